"""Decoupled KD, logit standardization and the objectives that train with them, checked against
the papers' formulas written out in plain Python (float64)."""
import math

import pytest
import torch

import kdutils as kd
from kdutils.losses.objectives import objective_key

STUDENT = torch.tensor([[1.0, 2.0, 0.5, -1.0], [0.0, -1.0, 3.0, 0.2], [2.5, 0.1, 0.3, 0.0]],
                       dtype=torch.float64)
TEACHER = torch.tensor([[4.0, 1.0, 0.0, -2.0], [1.0, 1.0, 6.0, 0.5], [0.2, 3.0, 0.1, 1.0]],
                       dtype=torch.float64)
LABELS = torch.tensor([0, 2, 1])


def softmax(row, T):
    z = sum(math.exp(v / T) for v in row)
    return [math.exp(v / T) / z for v in row]


def kl(p, q):
    return sum(a * math.log(a / b) for a, b in zip(p, q) if a > 0)


def dkd_reference(student, teacher, labels, T):
    """Zhao et al. (2022), eqs. 1-4: binary target/non-target distributions and the
    renormalized non-target one, per sample; batch means times T**2."""
    tckd = nckd = 0.0
    for s_row, t_row, y in zip(student.tolist(), teacher.tolist(), labels.tolist()):
        ps, pt = softmax(s_row, T), softmax(t_row, T)
        tckd += kl([pt[y], 1 - pt[y]], [ps[y], 1 - ps[y]])
        rest_s = [p / (1 - ps[y]) for i, p in enumerate(ps) if i != y]
        rest_t = [p / (1 - pt[y]) for i, p in enumerate(pt) if i != y]
        nckd += kl(rest_t, rest_s)
    n = len(labels)
    return tckd / n * T**2, nckd / n * T**2


def zscore_reference(row):
    mean = sum(row) / len(row)
    std = math.sqrt(sum((v - mean) ** 2 for v in row) / (len(row) - 1))
    return [(v - mean) / (std + 1e-7) for v in row]


@pytest.mark.parametrize("T", [1.0, 4.0])
def test_decoupled_terms_match_the_papers_formula(T):
    terms = kd.decoupled_kd_terms(STUDENT, TEACHER, LABELS, T)
    tckd, nckd = dkd_reference(STUDENT, TEACHER, LABELS, T)
    assert terms["tckd"].item() == pytest.approx(tckd, rel=1e-12)
    assert terms["nckd"].item() == pytest.approx(nckd, rel=1e-12)


@pytest.mark.parametrize("row", range(3))
@pytest.mark.parametrize("T", [1.0, 4.0])
def test_kd_is_tckd_plus_nckd_weighted_by_the_teachers_non_target_mass(row, T):
    s, t, y = STUDENT[row:row + 1], TEACHER[row:row + 1], LABELS[row:row + 1]
    terms = kd.decoupled_kd_terms(s, t, y, T)
    teacher_target = torch.softmax(t / T, 1)[0, y].item()
    torch.testing.assert_close(kd.kd_loss(s, t, T),
                               terms["tckd"] + (1 - teacher_target) * terms["nckd"])


def test_decoupled_loss_weights_its_terms():
    terms = kd.decoupled_kd_terms(STUDENT, TEACHER, LABELS, 4.0)
    torch.testing.assert_close(kd.decoupled_kd_loss(STUDENT, TEACHER, LABELS, 4.0, 2.0, 8.0),
                               2 * terms["tckd"] + 8 * terms["nckd"])


def test_decoupled_terms_are_zero_for_equal_logits_and_finite_for_a_sure_teacher():
    zero = kd.decoupled_kd_terms(TEACHER, TEACHER, LABELS, 4.0)
    assert all(value.item() == pytest.approx(0, abs=1e-12) for value in zero.values())
    sure = torch.tensor([[200.0, 0.0, 0.0]])
    terms = kd.decoupled_kd_terms(torch.zeros(1, 3), sure, torch.tensor([0]), 1.0)
    assert all(torch.isfinite(value) for value in terms.values())


def test_gradients_reach_the_student_only():
    student, teacher = STUDENT.clone().requires_grad_(), TEACHER.clone().requires_grad_()
    kd.decoupled_kd_loss(student, teacher, LABELS).backward()
    assert student.grad is not None and teacher.grad is None


@pytest.mark.parametrize("labels, match", [(torch.tensor([0, 4, 1]), "class indices in 0..3"),
                                           (torch.tensor([0, -1, 1]), "class indices"),
                                           (torch.tensor([0, 1]), "shape")])
def test_decoupled_terms_need_every_true_class(labels, match):
    with pytest.raises(ValueError, match=match):
        kd.decoupled_kd_terms(STUDENT, TEACHER, labels, 4.0)


@pytest.mark.parametrize("name, value", [("alpha", -1.0), ("beta", math.nan), ("beta", math.inf)])
def test_decoupled_loss_checks_its_weights(name, value):
    with pytest.raises(ValueError, match=f"{name} must be a finite number >= 0"):
        kd.decoupled_kd_loss(STUDENT, TEACHER, LABELS, **{name: value})


def test_standardize_matches_the_z_score_of_the_authors_code():
    expected = torch.tensor([zscore_reference(row) for row in TEACHER.tolist()],
                            dtype=torch.float64)
    torch.testing.assert_close(kd.standardize_logits(TEACHER), expected)


def test_standardized_kd_ignores_the_scale_and_shift_of_the_teachers_logits():
    objective = kd.StandardizedKD()
    first = objective.terms(STUDENT, TEACHER, LABELS, 0.0)["kd"]
    second = objective.terms(STUDENT, 5 * TEACHER - 3, LABELS, 0.0)["kd"]
    torch.testing.assert_close(first, second)
    assert kd.kd_loss(STUDENT, TEACHER, 2.0) != pytest.approx(kd.kd_loss(STUDENT, 5 * TEACHER, 2.0))


def test_standardize_refuses_a_single_class():
    with pytest.raises(ValueError, match="at least 2 classes"):
        kd.standardize_logits(torch.zeros(3, 1))


def test_standardize_turns_a_row_of_equal_logits_into_zeros():
    assert torch.equal(kd.standardize_logits(torch.full((1, 4), 3.0)), torch.zeros(1, 4))


def test_decoupled_objective_ramps_its_kd_terms_up_over_the_warmup():
    objective = kd.DecoupledKD(warmup=0.5)
    assert [objective.ramp(p) for p in (0.0, 0.25, 0.5, 0.9)] == [0.0, 0.5, 1.0, 1.0]
    full = kd.decoupled_kd_terms(STUDENT, TEACHER, LABELS, 4.0)
    half = objective.terms(STUDENT, TEACHER, LABELS, 0.25)
    torch.testing.assert_close(half["nckd"], 0.5 * 8.0 * full["nckd"])
    assert kd.DecoupledKD(warmup=0).ramp(0.0) == 1.0


def test_hinton_objective_is_the_course_loss():
    terms = kd.HintonKD(4.0, 0.1).terms(STUDENT, TEACHER, LABELS, 0.0)
    torch.testing.assert_close(sum(terms.values()),
                               kd.distillation_loss(STUDENT, TEACHER, LABELS, 4.0, 0.1))


@pytest.mark.parametrize("make, match", [(lambda: kd.DecoupledKD(T=0), "temperature"),
                                         (lambda: kd.DecoupledKD(beta=-8), "beta"),
                                         (lambda: kd.DecoupledKD(warmup=2), "warmup"),
                                         (lambda: kd.StandardizedKD(kd_weight=-1), "kd_weight"),
                                         (lambda: kd.HintonKD(4.0, 1.5), "alpha")])
def test_objectives_check_their_settings(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_objective_keys_hold_settings_not_memory_addresses():
    key = objective_key(kd.HintonKD(2.0, 0.5, kd.js_divergence_loss))
    assert key == "HintonKD(T=2.0, alpha=0.5, soft_loss=js_divergence_loss)"
    assert "0x" not in objective_key(kd.DecoupledKD())


def small_mlp():
    return kd.mlp((16, 8, 3))


def test_distill_trains_on_an_objectives_named_terms(tiny_data):
    kd.seed_everything(0)
    history = kd.distill(small_mlp(), small_mlp(), tiny_data, tiny_data,
                         objective=kd.DecoupledKD(warmup=0.5), epochs=2, lr=0.05, batch_size=16,
                         progress=False)
    assert {"ce", "tckd", "nckd", "loss"} <= set(history.rows[0])
    first, second = history.rows
    assert first["nckd"] < second["nckd"] * 3  # the ramp: epoch 1 averages about half weight


@pytest.mark.parametrize("settings, match", [({}, "give T and alpha"),
                                             ({"T": 4.0}, "give T and alpha"),
                                             ({"T": 4.0, "alpha": 0.5,
                                               "objective": kd.DecoupledKD()}, "leave T, alpha")])
def test_distill_takes_either_hintons_settings_or_an_objective(tiny_data, settings, match):
    with pytest.raises(ValueError, match=match):
        kd.distill(small_mlp(), small_mlp(), tiny_data, tiny_data, epochs=1, lr=0.05,
                   batch_size=16, progress=False, **settings)


def test_decoupled_kd_refuses_hidden_labels(tiny_data):
    hidden = tiny_data.hide_labels(torch.arange(10))
    with pytest.raises(ValueError, match="hidden labels"):
        kd.distill(small_mlp(), small_mlp(), hidden, tiny_data, objective=kd.DecoupledKD(),
                   epochs=1, lr=0.05, batch_size=16, progress=False)


def test_cached_distill_keys_students_by_objective(tiny_data):
    teacher = small_mlp()

    def run(objective):
        return kd.cached_distill(lambda: kd.mlp((16, 3)), "toy", teacher, tiny_data, tiny_data,
                                 objective=objective, epochs=1, lr=0.05, batch_size=16,
                                 progress=False)[1]

    dkd, standardized, dkd_again = run(kd.DecoupledKD()), run(kd.StandardizedKD()), run(kd.DecoupledKD())
    assert "tckd" in dkd.rows[0] and "tckd" not in standardized.rows[0]
    assert dkd_again.rows == dkd.rows
