"""Online distillation: Deep Mutual Learning (Zhang et al., CVPR 2018), and ensembles.

There is no pre-trained teacher: a cohort of students trains together from scratch, each on the
labels and on matching its peers' current predictions (KL at temperature ``T``, the peers'
side a constant). :class:`Cohort` makes several models one module, so :func:`train_loop` trains
them in one loop on the same batches, and reports each member's test accuracy.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..checks import check_loss_temperature, check_weight
from ..data.datasets import Batch, ImageDataset, check_labelled
from ..inference.predict import evaluate, logits_of, predict_logits
from ..losses.logits import kd_loss
from .loop import History, check_run, train_loop


class Cohort(nn.Module):
    """Models trained as one: ``forward`` returns each member's logits, in order.

    Its training accuracy in a :class:`~kdutils.training.loop.History` is the first member's; its
    test scores are each member's (``test_acc_0``, ``test_acc_1``, ...), ``test_acc`` their mean."""

    def __init__(self, members: Sequence[nn.Module]) -> None:
        super().__init__()
        if len(members) < 2:
            raise ValueError(f"a cohort needs at least 2 members, got {len(members)}")
        self.members = nn.ModuleList(members)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(logits_of(member(x)) for member in self.members)

    def test_scores(self, test: ImageDataset) -> dict[str, float]:
        scores = {f"test_acc_{i}": evaluate(m, test) for i, m in enumerate(self.members)}
        return {"test_acc": sum(scores.values()) / len(scores), **scores}


def mutual_terms(outputs: Sequence[torch.Tensor], labels: torch.Tensor, T: float,
                 peer_weight: float) -> dict[str, torch.Tensor]:
    """Each member's cross-entropy and ``peer_weight`` times its mean KD loss to the others."""
    terms = {}
    for i, logits in enumerate(outputs):
        peers = [other.detach() for j, other in enumerate(outputs) if j != i]
        terms[f"ce_{i}"] = F.cross_entropy(logits, labels)
        terms[f"peers_{i}"] = peer_weight * sum(kd_loss(logits, p, T) for p in peers) / len(peers)
    return terms


def mutual_learning(students: Sequence[nn.Module], train: ImageDataset, test: ImageDataset, *,
                    epochs: int, lr: float, batch_size: int, T: float = 1.0,
                    peer_weight: float = 1.0, seed: int = 0, lr_schedule: str = "constant",
                    label: str = "mutual", progress: bool = True) -> History:
    """Train ``students`` together, Deep Mutual Learning: one Adam, the same batches.

    All members are updated at each step from the same forward pass (the paper alternates the
    updates within a step; updating together is the common simplification). ``T=1`` and
    ``peer_weight=1`` are the paper's loss. Returns the cohort's History, with each member's
    test accuracy per epoch.
    """
    cohort = Cohort(students)
    check_run(cohort, train, test, epochs=epochs, lr=lr, batch_size=batch_size)
    check_loss_temperature(T, next(cohort.parameters()).dtype)
    check_weight(peer_weight, "peer_weight")
    check_labelled(train, "train", "mutual learning trains on the labels: give them")

    def terms(outputs: tuple[torch.Tensor, ...], batch: Batch) -> dict[str, torch.Tensor]:
        return mutual_terms(outputs, batch.labels, T, peer_weight)

    return train_loop(cohort, train, test, terms, epochs=epochs, lr=lr, batch_size=batch_size,
                      seed=seed, lr_schedule=lr_schedule, label=label, progress=progress)


def ensemble_accuracy(models: Sequence[nn.Module], data: ImageDataset) -> float:
    """Accuracy (%) of the models' averaged softmax outputs on ``data``."""
    check_labelled(data, "data", "score only the labelled samples")
    probabilities = torch.stack([F.softmax(predict_logits(m, data), 1) for m in models]).mean(0)
    return (probabilities.argmax(1) == data.labels).double().mean().item() * 100
