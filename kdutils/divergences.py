"""Losses between the student's and the teacher's distributions, for soft-label distillation.

Each takes ``(student_logits, teacher_logits, T)``, compares the softmax distributions at
temperature ``T``, averages over the batch and multiplies by ``T**2`` as :func:`kd_loss` does (at
``T=1``, SSLD's setting, the factor is 1). The teacher's logits are constants. ``kd_loss`` itself
is the KL divergence ``KL(p_teacher || p_student)``.
"""
from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F

from .checks import check_loss_temperature
from .losses import check_logits, kd_loss

SoftLoss = Callable[[torch.Tensor, torch.Tensor, float], torch.Tensor]


def _log_probs(student_logits: torch.Tensor, teacher_logits: torch.Tensor, T: float
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """Checked inputs as log-probabilities at temperature ``T``: ``(student, teacher)``."""
    check_loss_temperature(T, student_logits.dtype)
    check_logits(student_logits, teacher_logits)
    return (F.log_softmax(student_logits / T, dim=1),
            F.log_softmax(teacher_logits.detach() / T, dim=1))


def _kl_rows(log_p: torch.Tensor, log_q: torch.Tensor) -> torch.Tensor:
    """``KL(p || q)`` for each row, from log-probabilities, never negative.

    A class with ``p = 0`` contributes 0 (``log p`` is clamped to a finite value so that
    ``0 * log 0`` is not NaN); one with ``p > 0 = q`` makes the row ``+inf``, as in the math.
    """
    log_p = log_p.clamp(min=torch.finfo(log_p.dtype).min)
    return (log_p.exp() * (log_p - log_q)).sum(1).clamp(min=0)


def soft_cross_entropy(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                       T: float = 1.0) -> torch.Tensor:
    """Cross-entropy with the teacher's distribution as the target: ``-sum p_t log p_s``.

    It equals ``KL(p_t || p_s)`` plus the teacher's entropy, which the student cannot change:
    same gradient as the KL divergence, a different value.
    """
    log_s, log_t = _log_probs(student_logits, teacher_logits, T)
    return -(log_t.exp() * log_s).sum(1).mean() * T**2


def symmetric_kl_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                      T: float = 1.0) -> torch.Tensor:
    """``(KL(p_t || p_s) + KL(p_s || p_t)) / 2``: what PaddleClas's SSLD code calls "JS".

    PaddleClas also sums over the batch and multiplies by the number of classes; those constant
    factors act like a change of learning rate and are left out here.
    """
    log_s, log_t = _log_probs(student_logits, teacher_logits, T)
    return (_kl_rows(log_t, log_s) + _kl_rows(log_s, log_t)).mean() / 2 * T**2


def js_divergence_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                       T: float = 1.0) -> torch.Tensor:
    """The Jensen-Shannon divergence ``(KL(p_t || m) + KL(p_s || m)) / 2`` with ``m`` their mean.

    Bounded by ``log 2`` (times ``T**2``), symmetric, zero only for equal distributions.
    """
    log_s, log_t = _log_probs(student_logits, teacher_logits, T)
    log_m = torch.logaddexp(log_s, log_t) - math.log(2)
    return (_kl_rows(log_t, log_m) + _kl_rows(log_s, log_m)).mean() / 2 * T**2


SOFT_LOSSES: dict[str, SoftLoss] = {
    "soft CE": soft_cross_entropy,
    "KL": kd_loss,
    "symmetric KL (PaddleClas 'JS')": symmetric_kl_loss,
    "JS": js_divergence_loss,
}
