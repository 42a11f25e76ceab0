"""Deep Mutual Learning: the loss against a hand-written reference, and a cohort in train_loop."""
import pytest
import torch
import torch.nn.functional as F

import kdutils as kd
from kdutils.training import online


def reference_kl(target_logits, student_logits):
    p, q = F.softmax(target_logits, 1), F.softmax(student_logits, 1)
    return (p * (p.log() - q.log())).sum(1).mean()


def test_each_member_learns_the_labels_and_its_peers_predictions_as_constants():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(8, 5, generator=g).requires_grad_()
    b = torch.randn(8, 5, generator=g).requires_grad_()
    labels = torch.randint(0, 5, (8,), generator=g)
    terms = online.mutual_terms((a, b), labels, T=1.0, peer_weight=0.5)
    assert terms["ce_0"].item() == pytest.approx(F.cross_entropy(a, labels).item())
    assert terms["peers_0"].item() == pytest.approx(0.5 * reference_kl(b, a).item(), rel=1e-6)
    assert terms["peers_1"].item() == pytest.approx(0.5 * reference_kl(a, b).item(), rel=1e-6)
    terms["peers_0"].backward()
    assert b.grad is None and a.grad.abs().sum() > 0  # member 0's term moves member 0 only


def test_three_members_average_their_peers():
    g = torch.Generator().manual_seed(1)
    logits = [torch.randn(4, 3, generator=g) for _ in range(3)]
    terms = online.mutual_terms(logits, torch.zeros(4, dtype=torch.long), T=1.0, peer_weight=1.0)
    expected = (reference_kl(logits[1], logits[0]) + reference_kl(logits[2], logits[0])) / 2
    assert terms["peers_0"].item() == pytest.approx(expected.item(), rel=1e-6)


def test_mutual_learning_trains_every_member_and_reports_each(tiny_data):
    students = []
    for seed in (0, 1):
        kd.seed_everything(seed)
        students.append(kd.mlp([16, 8, 3]))
    before = [s[-1].weight.clone() for s in students]
    history = kd.mutual_learning(students, tiny_data, tiny_data, epochs=2, lr=1e-2,
                                 batch_size=16, progress=False)
    assert all(not torch.equal(b, s[-1].weight) for b, s in zip(before, students))
    row = history.rows[-1]
    assert row["test_acc_0"] == pytest.approx(kd.evaluate(students[0], tiny_data))
    assert row["test_acc_1"] == pytest.approx(kd.evaluate(students[1], tiny_data))
    assert row["test_acc"] == pytest.approx((row["test_acc_0"] + row["test_acc_1"]) / 2)
    assert {"ce_0", "peers_0", "ce_1", "peers_1"} <= set(row)


def test_a_cohort_needs_two_members_and_settings_are_checked(tiny_data):
    with pytest.raises(ValueError, match="at least 2 members"):
        online.Cohort([kd.mlp([16, 3])])
    with pytest.raises(ValueError, match="peer_weight"):
        kd.mutual_learning([kd.mlp([16, 3]), kd.mlp([16, 3])], tiny_data, tiny_data, epochs=1,
                           lr=1e-2, batch_size=16, peer_weight=-1.0)


def test_ensemble_accuracy_averages_the_members_probabilities(tiny_data):
    models = []
    for seed in (0, 1):
        kd.seed_everything(seed)
        models.append(kd.mlp([16, 8, 3]))
    assert kd.ensemble_accuracy(models[:1] * 2, tiny_data) == pytest.approx(
        kd.evaluate(models[0], tiny_data))
    probabilities = sum(F.softmax(kd.predict_logits(m, tiny_data), 1) for m in models)
    expected = (probabilities.argmax(1) == tiny_data.labels).double().mean().item() * 100
    assert kd.ensemble_accuracy(models, tiny_data) == pytest.approx(expected)
