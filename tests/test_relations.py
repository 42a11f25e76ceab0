"""Relational KD losses against a hand-written reference (loops over pairs and triplets)."""
import itertools

import pytest
import torch

from kdutils.losses import relations


def huber(a, b):
    d = abs(a - b)
    return 0.5 * d * d if d < 1 else d - 0.5


def reference_distance_loss(s, t):
    pairs = list(itertools.combinations(range(len(s)), 2))
    ds = [float((s[i] - s[j]).norm()) for i, j in pairs]
    dt = [float((t[i] - t[j]).norm()) for i, j in pairs]
    ms, mt = sum(ds) / len(ds), sum(dt) / len(dt)
    return sum(huber(a / ms, b / mt) for a, b in zip(ds, dt)) / len(pairs)


def cosine_at(e, i, j, k):
    u, v = e[i] - e[j], e[k] - e[j]
    if u.norm() == 0 or v.norm() == 0:
        return 0.0
    return float(u @ v / (u.norm() * v.norm()))


def reference_angle_loss(s, t):
    n = len(s)
    triplets = list(itertools.product(range(n), repeat=3))
    return sum(huber(cosine_at(s, i, j, k), cosine_at(t, i, j, k))
               for i, j, k in triplets) / len(triplets)


@pytest.fixture
def embeddings():
    g = torch.Generator().manual_seed(0)
    return torch.randn(6, 5, generator=g, dtype=torch.float64), \
        3 * torch.randn(6, 8, generator=g, dtype=torch.float64)  # other size and scale


def test_distance_loss_matches_the_reference(embeddings):
    s, t = embeddings
    assert relations.rkd_distance_loss(s, t).item() == pytest.approx(reference_distance_loss(s, t))


def test_angle_loss_matches_the_reference(embeddings):
    s, t = embeddings
    assert relations.rkd_angle_loss(s, t).item() == pytest.approx(reference_angle_loss(s, t))


def test_relations_ignore_scale_rotation_and_translation(embeddings):
    s, _ = embeddings
    rotation, _ = torch.linalg.qr(torch.randn(5, 5, dtype=torch.float64,
                                              generator=torch.Generator().manual_seed(1)))
    moved = 7 * s @ rotation + 2.5
    assert relations.rkd_distance_loss(moved, s).item() == pytest.approx(0, abs=1e-12)
    assert relations.rkd_angle_loss(moved, s).item() == pytest.approx(0, abs=1e-12)


def test_gradients_reach_the_student_only_and_are_finite_with_duplicate_samples():
    s = torch.randn(4, 3, generator=torch.Generator().manual_seed(2))
    s = torch.cat([s, s[:1]]).requires_grad_()  # two identical samples: a zero distance
    t = torch.randn(5, 6, generator=torch.Generator().manual_seed(3)).requires_grad_()
    (relations.rkd_distance_loss(s, t) + relations.rkd_angle_loss(s, t)).backward()
    assert torch.isfinite(s.grad).all() and s.grad.abs().sum() > 0
    assert t.grad is None


def test_mismatched_batches_are_refused_with_the_fix():
    with pytest.raises(ValueError, match="must hold the same samples"):
        relations.rkd_distance_loss(torch.randn(4, 3), torch.randn(5, 3))
    with pytest.raises(ValueError, match=r"\(batch, features\)"):
        relations.rkd_angle_loss(torch.randn(4), torch.randn(4))
