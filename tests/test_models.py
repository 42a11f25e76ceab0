import pytest
import torch

import kdutils as kd


def test_parameter_counts_match_the_architectures():
    assert kd.count_parameters(kd.mnist_teacher()) == 784 * 1200 + 1200 + 1200 * 1200 + 1200 + 1200 * 10 + 10
    assert kd.count_parameters(kd.mnist_student()) == 784 * 20 + 20 + 20 * 20 + 20 + 20 * 10 + 10


def test_teacher_has_dropout_student_does_not():
    assert sum(isinstance(m, torch.nn.Dropout) for m in kd.mnist_teacher()) == 2
    assert not any(isinstance(m, torch.nn.Dropout) for m in kd.mnist_student())


def test_models_take_images_and_return_logits():
    assert kd.mnist_student()(torch.zeros(5, 1, 28, 28)).shape == (5, 10)


def test_same_seed_same_initial_weights():
    kd.seed_everything(3)
    a = kd.mnist_student()
    kd.seed_everything(3)
    b = kd.mnist_student()
    for pa, pb in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(pa, pb)


def test_mlp_needs_input_and_output():
    with pytest.raises(ValueError, match="sizes"):
        kd.mlp((784,))


def test_hinton_nets_have_the_papers_sizes():
    teacher = kd.hinton_teacher()
    assert kd.count_parameters(teacher) == 784 * 1200 + 1200 + 1200 * 1200 + 1200 + 1200 * 10 + 10
    assert [m.p for m in teacher if isinstance(m, torch.nn.Dropout)] == [0.2, 0.5, 0.5]
    for hidden in (800, 30):
        student = kd.hinton_student(hidden)
        sizes = [m.out_features for m in student if isinstance(m, torch.nn.Linear)]
        assert sizes == [hidden, hidden, 10]
        assert not any(isinstance(m, torch.nn.Dropout) for m in student)


@pytest.mark.parametrize("bad", [0, -5, 2.5, True])
def test_hinton_student_needs_a_positive_unit_count(bad):
    with pytest.raises(ValueError, match="hidden"):
        kd.hinton_student(bad)


def test_mnist_cnn_takes_mnist_images_and_has_its_documented_size():
    net = kd.mnist_cnn()
    logits, feature_map = net.forward_with_features(torch.zeros(3, 1, 28, 28))
    assert logits.shape == (3, 10) and feature_map.shape == (3, 50, 7, 7)
    assert kd.count_parameters(net) == 1_256_080
