import math

import pytest
import torch
from torch import nn

import kdutils as kd


def three_classes(n: int = 30) -> kd.ImageDataset:
    images = torch.zeros(n, 1, 2, 2, dtype=torch.uint8)
    return kd.ImageDataset(images, torch.arange(n) % 3, (0.5,), (0.25,), "cyclic", "cyclic")


def test_labelled_split_takes_per_class_and_leaves_the_rest():
    data = three_classes()
    labelled, pool = kd.labelled_split(data, per_class=4, seed=1)
    assert torch.bincount(data.labels[labelled]).tolist() == [4, 4, 4]
    assert torch.cat([labelled, pool]).sort().values.tolist() == list(range(len(data)))
    again, _ = kd.labelled_split(data, per_class=4, seed=1)
    other, _ = kd.labelled_split(data, per_class=4, seed=2)
    assert torch.equal(labelled, again) and not torch.equal(labelled, other)


def test_labelled_split_refuses_impossible_sizes():
    with pytest.raises(ValueError, match="per_class must be between 1 and 9"):
        kd.labelled_split(three_classes(), per_class=10)


def test_hidden_labels_are_marked_and_named(tiny_data):
    hidden = tiny_data.hide_labels(torch.tensor([0, 5, 7]))
    assert (hidden.labels == kd.UNLABELLED).sum() == 3 and int(hidden.labelled.sum()) == 93
    assert torch.equal(tiny_data.labels[tiny_data.labels != -1], tiny_data.labels)  # untouched
    assert "labels of 3 hidden" in hidden.name


def test_fit_and_hard_label_distillation_refuse_hidden_labels(tiny_data):
    hidden = tiny_data.hide_labels(torch.arange(10))
    with pytest.raises(ValueError, match="10 samples with hidden labels"):
        kd.fit(kd.mlp((16, 3)), hidden, tiny_data, epochs=1, lr=1e-2, batch_size=16)
    with pytest.raises(ValueError, match="alpha=0"):
        kd.distill(kd.mlp((16, 3)), kd.mlp((16, 3)), hidden, tiny_data, T=2.0, alpha=0.5,
                   epochs=1, lr=1e-2, batch_size=16)


def test_soft_label_distillation_trains_on_hidden_labels(tiny_data):
    torch.manual_seed(0)
    teacher = kd.mlp((16, 3))
    kwargs = dict(T=1.0, alpha=0.0, epochs=1, lr=1e-2, batch_size=16, progress=False)
    torch.manual_seed(1)
    visible = kd.distill(kd.mlp((16, 3)), teacher, tiny_data, tiny_data, **kwargs).rows[0]
    torch.manual_seed(1)
    some_hidden = tiny_data.hide_labels(torch.arange(48))
    partly = kd.distill(kd.mlp((16, 3)), teacher, some_hidden, tiny_data, **kwargs).rows[0]
    assert partly["kd"] == visible["kd"]  # the labels play no part in the loss
    torch.manual_seed(1)
    all_hidden = tiny_data.hide_labels(torch.arange(len(tiny_data)))
    blind = kd.distill(kd.mlp((16, 3)), teacher, all_hidden, tiny_data, **kwargs).rows[0]
    assert math.isnan(blind["train_acc"]) and blind["test_acc"] == visible["test_acc"]


def test_top_k_per_class_keeps_each_class_best_rows():
    logits = torch.tensor([[5.0, 0, 0], [4.0, 0, 0], [0, 5.0, 0], [0, 4.0, 0], [0, 0, 5.0],
                           [0, 0, 4.0], [1.0, 1.0, 1.0]])
    assert kd.top_k_per_class(logits, 1).tolist() == [0, 2, 4]
    assert kd.top_k_per_class(logits, 2).tolist() == [0, 1, 2, 3, 4, 5]


def test_top_k_per_class_deduplicates_rows_best_for_two_classes():
    logits = torch.tensor([[3.0, 3.0, -9.0], [0.0, 0.0, 0.0], [-9.0, -9.0, 3.0]])
    assert kd.top_k_per_class(logits, 1).tolist() == [0, 2]


def test_top_k_per_class_checks_k():
    with pytest.raises(ValueError, match="k must be"):
        kd.top_k_per_class(torch.zeros(4, 3), 5)


def bn_net() -> nn.Sequential:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.BatchNorm1d(8), nn.ReLU(),
                        nn.Dropout(0.5), nn.Linear(8, 3))
    with torch.no_grad():  # running statistics unlike any batch's, so the modes differ
        net[2].running_mean.fill_(1.0)
        net[2].running_var.fill_(4.0)
    return net


def test_batch_stats_logits_use_batch_statistics_in_dataset_order(tiny_data):
    teacher = bn_net()
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    logits = kd.teacher_logits_batch_stats(teacher, tiny_data, batch_size=len(tiny_data))
    reference = bn_net().eval()
    reference[2].train()  # one batch of every sample: the same statistics in any order
    with torch.no_grad():
        expected = reference(tiny_data.normalized())
    torch.testing.assert_close(logits, expected)
    assert not torch.allclose(logits, kd.teacher_logits(bn_net(), tiny_data))
    assert all(torch.equal(before[k], v) for k, v in teacher.state_dict().items())


def test_batch_stats_logits_depend_on_the_batches(tiny_data):
    small = kd.teacher_logits_batch_stats(bn_net(), tiny_data, batch_size=8, seed=0)
    other = kd.teacher_logits_batch_stats(bn_net(), tiny_data, batch_size=8, seed=1)
    assert not torch.allclose(small, other)


def test_batch_stats_logits_need_batch_norm(tiny_data):
    with pytest.raises(ValueError, match="batch_norm=True"):
        kd.teacher_logits_batch_stats(kd.mlp((16, 3)), tiny_data, batch_size=8)


def test_deep_nn_with_batch_norm():
    plain, with_bn = kd.deep_nn(), kd.deep_nn(batch_norm=True)
    assert kd.count_parameters(with_bn) - kd.count_parameters(plain) == 2 * (128 + 64 + 64 + 32)
    logits, feature_map = with_bn.forward_with_features(torch.zeros(2, 3, 32, 32))
    assert logits.shape == (2, 10) and feature_map.shape == (2, 32, 8, 8)
