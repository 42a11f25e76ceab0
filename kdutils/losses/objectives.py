"""Distillation objectives: what a student minimizes against a teacher's logits, as named terms.

An objective turns ``(student_logits, teacher_logits, labels, progress)`` into the named loss terms
that :func:`~kdutils.training.loop.train_loop` sums and records; ``progress`` is the fraction of
training done (0 at the first step), for terms that warm up. :class:`HintonKD` is the course's loss
since notebook 02 (``distill(T=..., alpha=...)`` builds it); :class:`StandardizedKD` and
:class:`DecoupledKD` are the recipes of Sun et al. (2024) and Zhao et al. (2022), with their papers'
CIFAR-100 settings as defaults. Each is a frozen dataclass, so its ``repr`` names every setting and
serves in cache keys."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch
import torch.nn.functional as F

from ..checks import check_non_negative, check_positive, check_temperature, check_weight
from .logits import SoftLoss, decoupled_kd_terms, distillation_terms, kd_loss, standardize_logits


class Objective(Protocol):
    """What :func:`~kdutils.training.distill.distill` needs of a distillation objective."""

    @property
    def needs_labels(self) -> bool:
        """Whether the terms use the hard labels (then every training label must be known)."""

    def terms(self, student_logits: torch.Tensor, teacher_logits: torch.Tensor,
              labels: torch.Tensor, progress: float) -> dict[str, torch.Tensor]:
        """The weighted, named loss terms of one batch."""


def _cross_entropy(weight: float, student_logits: torch.Tensor,
                   labels: torch.Tensor) -> torch.Tensor:
    """``weight * CE(student, labels)``, or a zero that skips the labels when ``weight`` is 0."""
    if weight == 0:
        return student_logits.new_zeros(())
    return weight * F.cross_entropy(student_logits, labels)


@dataclass(frozen=True)
class HintonKD:
    """``alpha * CE + (1 - alpha) * soft_loss(T)``: Hinton et al.'s loss, notebook 02's."""

    T: float
    alpha: float
    soft_loss: SoftLoss = kd_loss

    def __post_init__(self) -> None:
        check_temperature(self.T)
        check_weight(self.alpha, "alpha")

    @property
    def needs_labels(self) -> bool:
        return self.alpha > 0

    def terms(self, student_logits: torch.Tensor, teacher_logits: torch.Tensor,
              labels: torch.Tensor, progress: float) -> dict[str, torch.Tensor]:
        return distillation_terms(student_logits, teacher_logits, labels, self.T, self.alpha,
                                  self.soft_loss)


@dataclass(frozen=True)
class StandardizedKD:
    """``ce_weight * CE + kd_weight * kd_loss(z(student), z(teacher), T)``, ``z`` the row-wise
    z-score (:func:`~kdutils.losses.logits.standardize_logits`): Sun et al.'s logit standardization.

    Defaults: the authors' CIFAR-100 setting for KD (base temperature 2, KD weight 9, the CE
    weight 0.1 of mdistiller's KD). A z-scored row has std 1, so its softmax at ``T=2`` is soft;
    the large KD weight makes up for its small gradients.
    """

    T: float = 2.0
    ce_weight: float = 0.1
    kd_weight: float = 9.0

    def __post_init__(self) -> None:
        check_positive(self.T, "T", "the temperature; Sun et al. use a base temperature of 2 or 3")
        check_non_negative(self.ce_weight, "ce_weight", "Sun et al. use 0.1")
        check_non_negative(self.kd_weight, "kd_weight", "Sun et al. use 9")

    @property
    def needs_labels(self) -> bool:
        return self.ce_weight > 0

    def terms(self, student_logits: torch.Tensor, teacher_logits: torch.Tensor,
              labels: torch.Tensor, progress: float) -> dict[str, torch.Tensor]:
        kd = kd_loss(standardize_logits(student_logits), standardize_logits(teacher_logits),
                     self.T)
        return {"ce": _cross_entropy(self.ce_weight, student_logits, labels),
                "kd": self.kd_weight * kd}


@dataclass(frozen=True)
class DecoupledKD:
    """``ce_weight * CE + ramp * (alpha * TCKD + beta * NCKD)`` at temperature ``T``: Zhao et
    al.'s decoupled KD (:func:`~kdutils.losses.logits.decoupled_kd_terms`).

    ``ramp`` rises linearly from 0 to 1 over the first ``warmup`` fraction of the training steps
    (the paper: 20 of 240 epochs, ``warmup=1/12``), then stays at 1. ``standardize`` z-scores
    both logits first, as Sun et al. do for "DKD + ours". Defaults: the paper's CIFAR-100
    setting (mdistiller's configuration).
    """

    T: float = 4.0
    alpha: float = 1.0
    beta: float = 8.0
    ce_weight: float = 1.0
    warmup: float = 20 / 240
    standardize: bool = False

    def __post_init__(self) -> None:
        check_positive(self.T, "T", "the temperature; the DKD paper uses 4")
        check_non_negative(self.alpha, "alpha", "the weight of TCKD; the DKD paper uses 1")
        check_non_negative(self.beta, "beta", "the weight of NCKD; the DKD paper uses 8 on "
                           "CIFAR-100, 0.5 on ImageNet")
        check_non_negative(self.ce_weight, "ce_weight", "the DKD paper uses 1")
        check_weight(self.warmup, "warmup")

    @property
    def needs_labels(self) -> bool:
        return True  # TCKD and NCKD are defined by each sample's true class

    def ramp(self, progress: float) -> float:
        """The weight of the KD terms after a fraction ``progress`` of training."""
        return 1.0 if self.warmup == 0 else min(progress / self.warmup, 1.0)

    def terms(self, student_logits: torch.Tensor, teacher_logits: torch.Tensor,
              labels: torch.Tensor, progress: float) -> dict[str, torch.Tensor]:
        student, teacher = student_logits, teacher_logits
        if self.standardize:
            student, teacher = standardize_logits(student), standardize_logits(teacher)
        split = decoupled_kd_terms(student, teacher, labels, self.T)
        ramp = self.ramp(progress)
        return {"ce": _cross_entropy(self.ce_weight, student_logits, labels),
                "tckd": ramp * self.alpha * split["tckd"],
                "nckd": ramp * self.beta * split["nckd"]}


def objective_key(objective: Objective) -> str:
    """A stable description of ``objective`` for cache keys: its class and settings, functions
    by their qualified name (a ``repr`` would hold memory addresses)."""
    settings = ", ".join(
        f"{name}={getattr(value, '__qualname__', None) or repr(value)}"
        if callable(value) else f"{name}={value!r}"
        for name, value in vars(objective).items())
    return f"{type(objective).__qualname__}({settings})"
