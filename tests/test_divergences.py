import math

import pytest
import torch

import kdutils as kd

STUDENT = torch.tensor([[1.0, 2.0, 0.5], [0.0, -1.0, 3.0]], dtype=torch.float64)
TEACHER = torch.tensor([[2.0, 1.0, 0.0], [1.0, 1.0, 4.0]], dtype=torch.float64)
LOSSES = list(kd.SOFT_LOSSES.values())


def probs(row, T):
    z = sum(math.exp(v / T) for v in row)
    return [math.exp(v / T) / z for v in row]


def kl(p, q):
    return sum(a * math.log(a / b) for a, b in zip(p, q))


def reference(kind, student, teacher, T):
    """Each loss written out sample by sample in plain Python."""
    total = 0.0
    for s_row, t_row in zip(student.tolist(), teacher.tolist()):
        ps, pt = probs(s_row, T), probs(t_row, T)
        m = [(a + b) / 2 for a, b in zip(ps, pt)]
        total += {"soft CE": -sum(t * math.log(s) for s, t in zip(ps, pt)),
                  "symmetric KL": (kl(pt, ps) + kl(ps, pt)) / 2,
                  "JS": (kl(pt, m) + kl(ps, m)) / 2}[kind]
    return total / len(student) * T**2


@pytest.mark.parametrize("T", [1.0, 3.0])
@pytest.mark.parametrize("kind, loss", [("soft CE", kd.soft_cross_entropy),
                                        ("symmetric KL", kd.symmetric_kl_loss),
                                        ("JS", kd.js_divergence_loss)])
def test_values_match_plain_python(kind, loss, T):
    assert loss(STUDENT, TEACHER, T).item() == pytest.approx(reference(kind, STUDENT, TEACHER, T),
                                                             rel=1e-12)


def test_soft_cross_entropy_is_kl_plus_teacher_entropy():
    p_teacher = TEACHER.softmax(1)
    entropy = -(p_teacher * p_teacher.log()).sum(1).mean()
    torch.testing.assert_close(kd.soft_cross_entropy(STUDENT, TEACHER),
                               kd.kd_loss(STUDENT, TEACHER, 1.0) + entropy)


@pytest.mark.parametrize("loss", [kd.symmetric_kl_loss, kd.js_divergence_loss])
def test_symmetric_losses_are_symmetric(loss):
    torch.testing.assert_close(loss(STUDENT, TEACHER), loss(TEACHER, STUDENT))


def test_kl_is_not_symmetric():
    assert kd.kd_loss(STUDENT, TEACHER, 1.0) != pytest.approx(kd.kd_loss(TEACHER, STUDENT, 1.0))


@pytest.mark.parametrize("loss", [kd.kd_loss, kd.symmetric_kl_loss, kd.js_divergence_loss])
def test_divergences_are_zero_for_equal_inputs(loss):
    assert loss(TEACHER, TEACHER.clone(), 2.0).item() == pytest.approx(0.0, abs=1e-12)


def test_js_is_bounded_by_log_two():
    far = torch.tensor([[50.0, -50.0]], dtype=torch.float64)
    value = kd.js_divergence_loss(far, -far).item()
    assert value <= math.log(2) and value == pytest.approx(math.log(2), rel=1e-6)


@pytest.mark.parametrize("loss", LOSSES)
def test_gradient_pulls_the_student_towards_the_teacher(loss):
    student = torch.zeros(1, 3, dtype=torch.float64, requires_grad=True)
    teacher = torch.tensor([[3.0, 0.0, 0.0]], dtype=torch.float64, requires_grad=True)
    loss(student, teacher, 1.0).backward()
    assert student.grad[0, 0] < 0 < student.grad[0, 1]  # descent raises the teacher's class
    assert teacher.grad is None
    with torch.no_grad():
        stepped = student - 0.1 * student.grad
    assert loss(stepped, teacher, 1.0) < loss(student.detach(), teacher, 1.0)


def test_symmetric_kl_is_paddleclas_js_up_to_constant_factors():
    """PaddleClas's ``_jsdiv``: sum over the batch of both KLs, times the class count, halved."""
    p_student, p_teacher = STUDENT.softmax(1), TEACHER.softmax(1)
    classes, batch = STUDENT.shape[1], STUDENT.shape[0]

    def paddle_kldiv(input, target):
        return (target * (target / input).log() * classes).sum()

    paddle = (paddle_kldiv(p_student, p_teacher) + paddle_kldiv(p_teacher, p_student)) / 2
    torch.testing.assert_close(kd.symmetric_kl_loss(STUDENT, TEACHER) * batch * classes, paddle)


@pytest.mark.parametrize("loss", LOSSES)
def test_bad_inputs_name_the_argument(loss):
    with pytest.raises(ValueError, match="temperature"):
        loss(STUDENT, TEACHER, 0.0)
    with pytest.raises(ValueError, match="target_logits"):
        loss(STUDENT, TEACHER[:, :2], 1.0)


def test_distill_accepts_another_soft_loss(tiny_data):
    torch.manual_seed(0)
    teacher = kd.mlp((16, 8, 3))

    def run(loss):
        torch.manual_seed(1)
        return kd.distill(kd.mlp((16, 4, 3)), teacher, tiny_data, tiny_data, T=1.0, alpha=0.0,
                          soft_loss=loss, epochs=1, lr=1e-2, batch_size=16, progress=False)

    runs = [run(kd.kd_loss), run(kd.soft_cross_entropy)]
    kl_run, ce_run = (run.rows[0] for run in runs)
    assert kl_run["ce"] == ce_run["ce"] == 0.0
    assert ce_run["kd"] > kl_run["kd"]  # same gradients, but CE adds the teacher's entropy
    assert ce_run["train_acc"] == kl_run["train_acc"]


@pytest.mark.parametrize("loss", [kd.soft_cross_entropy, kd.js_divergence_loss])
def test_masked_teacher_class_gives_a_finite_loss_and_gradient(loss):
    teacher = torch.tensor([[2.0, 1.0, -math.inf], [0.5, -math.inf, 1.0]])
    student = torch.tensor([[1.0, 0.0, 0.5], [0.0, 1.0, 2.0]], requires_grad=True)
    value = loss(student, teacher, 1.0)
    value.backward()
    assert math.isfinite(value.item()) and value.item() >= 0
    assert torch.isfinite(student.grad).all()


def test_symmetric_kl_with_a_masked_teacher_class_is_infinite_not_nan():
    """KL(p_s || p_t) is infinite when p_t is 0 where p_s is not: the math, not a NaN."""
    teacher = torch.tensor([[2.0, 1.0, -math.inf]])
    value = kd.symmetric_kl_loss(torch.zeros(1, 3), teacher, 1.0)
    assert value.item() == math.inf


@pytest.mark.parametrize("loss", [kd.soft_cross_entropy, kd.symmetric_kl_loss,
                                  kd.js_divergence_loss])
def test_too_large_temperature_is_refused(loss):
    with pytest.raises(ValueError, match="float64"):
        loss(torch.zeros(2, 3), torch.ones(2, 3), 1e5)


@pytest.mark.parametrize("loss", [kd.symmetric_kl_loss, kd.js_divergence_loss])
def test_divergences_of_nearly_equal_logits_are_never_negative(loss):
    generator = torch.Generator().manual_seed(2)
    teacher = torch.randn(64, 10, generator=generator) * 8
    student = (teacher + 1e-4 * torch.randn(64, 10, generator=generator)).requires_grad_()
    value = loss(student, teacher, 1.0)
    value.backward()
    assert value.item() >= 0 and torch.isfinite(student.grad).all()
