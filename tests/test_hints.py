import pytest
import torch
from torch import nn

import kdutils as kd


def test_tutorial_nets_have_its_parameter_counts_and_feature_maps():
    teacher, student = kd.deep_nn(), kd.light_nn()
    assert kd.count_parameters(teacher) == 1_186_986
    assert kd.count_parameters(student) == 267_738
    x = torch.randn(2, 3, 32, 32)
    for net, shape in ((teacher, (2, 32, 8, 8)), (student, (2, 16, 8, 8))):
        logits, feature_map = net.forward_with_features(x)
        assert logits.shape == (2, 10) and feature_map.shape == shape
        net.eval()
        torch.testing.assert_close(net(x), net.forward_with_features(x)[0])
    assert kd.hint_regressor()(torch.randn(2, 16, 8, 8)).shape == (2, 32, 8, 8)


def test_cosine_hint_loss_equals_cosine_embedding_loss_with_target_one():
    g = torch.Generator().manual_seed(0)
    student, teacher = torch.randn(6, 16, 8, 8, generator=g), torch.randn(6, 1024, generator=g)
    expected = nn.CosineEmbeddingLoss()(student.flatten(1), teacher, torch.ones(6))
    torch.testing.assert_close(kd.cosine_hint_loss(student, teacher), expected)
    assert kd.cosine_hint_loss(teacher, 3 * teacher).item() == pytest.approx(0, abs=1e-6)


def test_pool_features_is_the_tutorials_avg_pool1d():
    features = torch.randn(4, 32, 8, 8)
    expected = torch.nn.functional.avg_pool1d(features.flatten(1), 2)
    torch.testing.assert_close(kd.pool_features(features, 1024), expected)
    with pytest.raises(ValueError, match="size must divide"):
        kd.pool_features(features, 1000)


def test_mse_hint_loss_values_and_gradient_only_to_the_student():
    student = torch.zeros(2, 32, 8, 8, requires_grad=True)
    teacher = torch.full((2, 32, 8, 8), 2.0, requires_grad=True)
    loss = kd.mse_hint_loss(student, teacher)
    assert loss.item() == pytest.approx(4.0)
    loss.backward()
    assert student.grad is not None and teacher.grad is None


@pytest.mark.parametrize("loss", [kd.cosine_hint_loss, kd.mse_hint_loss])
def test_hint_losses_name_both_shapes_and_the_fix(loss):
    with pytest.raises(ValueError) as info:
        loss(torch.zeros(2, 16, 8, 8), torch.zeros(2, 32, 8, 8))
    message = str(info.value)
    assert "(2, 1024)" in message or "(2, 16, 8, 8)" in message
    assert "(2, 2048)" in message or "(2, 32, 8, 8)" in message
    assert "regressor" in message and "pool" in message


def tiny_images(n=24, seed=0):
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=g)
    labels = torch.arange(n) % 10
    return kd.ImageDataset(images, labels, (0.5,) * 3, (0.25,) * 3, f"img-{n}", "synthetic")


def test_teacher_features_are_in_dataset_order_and_leave_the_teacher_frozen():
    data = tiny_images()
    kd.seed_everything(0)
    teacher = kd.deep_nn()
    outputs = kd.teacher_features(teacher, data, pooled_size=1024, batch_size=10)
    assert not teacher.training and not any(p.requires_grad for p in teacher.parameters())
    logits, feature_map = teacher.forward_with_features(data.normalized(torch.arange(24)))
    torch.testing.assert_close(outputs["logits"], logits)
    torch.testing.assert_close(outputs["feature_map"], feature_map)
    torch.testing.assert_close(outputs["pooled"], kd.pool_features(feature_map, 1024))


def test_distill_hint_trains_the_regressor_and_looks_targets_up_by_index():
    data = tiny_images()
    kd.seed_everything(0)
    targets = torch.randn(24, 32, 8, 8)
    student, regressor = kd.light_nn(), kd.hint_regressor()
    regressor_before = regressor.weight.clone()
    with pytest.warns(UserWarning, match="no data fingerprint"):  # hand-made: cannot be checked
        history = kd.distill_hint(student, targets, data, data, hint_loss=kd.mse_hint_loss,
                                  hint_weight=0.25, ce_weight=0.75, regressor=regressor,
                                  epochs=2, lr=1e-3, batch_size=8, progress=False)
    assert {"ce", "hint"} <= set(history.rows[0])
    assert not torch.equal(regressor.weight, regressor_before)
    with pytest.raises(ValueError, match="targets has 5 rows"):
        kd.distill_hint(student, targets[:5], data, data, hint_loss=kd.mse_hint_loss,
                        hint_weight=0.25, ce_weight=0.75, epochs=1, lr=1e-3, batch_size=8,
                        progress=False)
    with pytest.raises(ValueError, match="hint_weight"):
        kd.distill_hint(student, targets, data, data, hint_loss=kd.mse_hint_loss,
                        hint_weight=1.5, ce_weight=0.75, epochs=1, lr=1e-3, batch_size=8,
                        progress=False)


def test_fitnets_stage_one_trains_the_layers_up_to_the_guided_one_and_leaves_the_rest():
    data = tiny_images()
    kd.seed_everything(0)
    teacher = kd.deep_nn()
    targets = kd.teacher_features(teacher, data, pooled_size=1024)["feature_map"]
    student = kd.light_nn()
    features, classifier = ([p.clone() for p in part.parameters()]
                            for part in (student.features, student.classifier))
    kd.distill_hint(student, targets, data, data, hint_loss=kd.mse_hint_loss, hint_weight=1.0,
                    ce_weight=0.0, regressor=kd.hint_regressor(), epochs=1, lr=1e-3,
                    batch_size=8, progress=False)
    assert all(torch.equal(a, b) for a, b in zip(classifier, student.classifier.parameters()))
    assert not all(torch.equal(a, b) for a, b in zip(features, student.features.parameters()))


def test_distill_hint_refuses_mismatched_features_before_updating_the_student():
    data = tiny_images()
    student = kd.light_nn()
    before = {k: v.clone() for k, v in student.state_dict().items()}
    with pytest.raises(ValueError, match="regressor"):
        kd.distill_hint(student, kd.teacher_features(kd.deep_nn(), data, 1024)["feature_map"],
                        data, data,
                        hint_loss=kd.mse_hint_loss, hint_weight=0.25, ce_weight=0.75, epochs=1,
                        lr=1e-3, batch_size=8, progress=False)
    for name, value in student.state_dict().items():
        assert torch.equal(value, before[name])


def test_conv_models_train_in_channels_last_and_predict_as_in_plain_layout():
    data = tiny_images()
    kd.seed_everything(0)
    net = kd.light_nn()
    kd.fit(net, data, data, epochs=1, lr=1e-3, batch_size=8, progress=False)
    assert net.features[0].weight.is_contiguous(memory_format=torch.channels_last)
    net.eval()
    with torch.no_grad():
        plain = net(data.normalized(torch.arange(len(data))).contiguous())
    torch.testing.assert_close(kd.predict_logits(net, data), plain, rtol=1e-4, atol=1e-5)
