"""Losses on logits, as pure functions of tensors with checked inputs: the softmax with
temperature, Hinton's KD loss and its weighting against the labels, the other divergences of
soft-label distillation (soft cross-entropy, symmetric KL, Jensen-Shannon, and for language
models reverse KL and GKD's generalized JSD), and two recipes of 2022-2024: decoupled KD (TCKD
and NCKD) and logit standardization.

Each soft loss takes ``(student_logits, target_logits, T)``: the target is what the student
learns to match, usually a teacher's logits (a peer's in online distillation), and is treated as
a constant. It compares the softmax distributions at temperature ``T``, averages over the batch
and multiplies by ``T**2`` (at ``T=1``, SSLD's setting, the factor is 1). Feature ("hint")
losses are in :mod:`kdutils.training.hints`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from ..checks import check_loss_temperature, check_non_negative, check_temperature, check_weight


def check_logits(student_logits: torch.Tensor, target_logits: torch.Tensor) -> None:
    """Raise ``ValueError`` unless both are 2-D ``(batch, classes)`` tensors of the same shape."""
    for name, logits in (("student_logits", student_logits), ("target_logits", target_logits)):
        if logits.dim() != 2:
            raise ValueError(f"{name} must be 2-D (batch, classes), got shape "
                             f"{tuple(logits.shape)}; flatten or select the logits first")
    if student_logits.shape[0] == 0:
        raise ValueError("student_logits has 0 rows: an empty batch has no loss (its mean is NaN); "
                         "skip empty batches before computing the loss")
    if student_logits.shape != target_logits.shape:
        raise ValueError(f"student_logits {tuple(student_logits.shape)} and target_logits "
                         f"{tuple(target_logits.shape)} must have the same shape (same batch "
                         "order, same classes)")


def softmax_with_temperature(logits: torch.Tensor, T: float) -> torch.Tensor:
    """``softmax(logits / T)`` over the last dimension; larger ``T`` gives softer distributions."""
    check_temperature(T)
    return F.softmax(logits / T, dim=-1)


SoftLoss = Callable[[torch.Tensor, torch.Tensor, float], torch.Tensor]


def finite_log_probs(log_p: torch.Tensor) -> torch.Tensor:
    """``log_p`` with ``-inf`` (probability 0) replaced by the dtype's lowest finite value, so
    that a ``p * log p`` or ``p * (log p - log q)`` term of such a class gives 0, not NaN."""
    return log_p.clamp(min=torch.finfo(log_p.dtype).min)


def non_negative(divergence: torch.Tensor) -> torch.Tensor:
    """``max(divergence, 0)`` in value, with the gradient of ``divergence`` itself.

    Float rounding can push a divergence that is nearly 0 slightly below it; the true value is
    never negative. The gradient is left as it is, so training is unchanged.
    """
    return divergence + (-divergence).clamp(min=0).detach()


def loss_precision(*logits: torch.Tensor) -> torch.dtype:
    """The dtype a soft loss is computed in: the logits' widest, and float32 at least. In
    bfloat16 or float16 the ``T**2``-scaled loss is percents off at high ``T`` (bfloat16: 1.5% at
    T=20)."""
    dtype = torch.float32
    for tensor in logits:
        dtype = torch.promote_types(dtype, tensor.dtype)
    return dtype


def _log_probs(student_logits: torch.Tensor, target_logits: torch.Tensor, T: float
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """Checked inputs as log-probabilities at temperature ``T``: ``(student, target)``, in
    :func:`loss_precision` (gradients flow back to the student's own dtype)."""
    dtype = loss_precision(student_logits, target_logits)
    check_loss_temperature(T, dtype)
    check_logits(student_logits, target_logits)
    return (F.log_softmax(student_logits.to(dtype) / T, dim=1),
            F.log_softmax(target_logits.detach().to(dtype) / T, dim=1))


def kd_loss(student_logits: torch.Tensor, target_logits: torch.Tensor, T: float) -> torch.Tensor:
    """Hinton's soft-target loss: ``KL(p_teacher^T || p_student^T)``, batch mean, times ``T**2``.

    The ``T**2`` keeps the gradient's size independent of ``T`` (Hinton et al., 2015, section 2).
    ``target_logits`` (the teacher's) are constants: no gradient flows into them. A target logit
    of ``-inf`` (a masked class) contributes nothing. Computed in float32 at least
    (:func:`loss_precision`), whatever the logits' dtype. ``T`` above
    :data:`~kdutils.checks.MAX_LOSS_TEMPERATURE` for the logits' dtype is refused.
    """
    log_p_student, log_p_target = _log_probs(student_logits, target_logits, T)
    kl = F.kl_div(log_p_student, finite_log_probs(log_p_target), reduction="batchmean",
                  log_target=True)
    return non_negative(kl) * T**2


def distillation_terms(student_logits: torch.Tensor, target_logits: torch.Tensor,
                       labels: torch.Tensor, T: float, alpha: float,
                       soft_loss: SoftLoss = kd_loss
                       ) -> dict[str, torch.Tensor]:
    """The two weighted terms ``{"ce": alpha * CE, "kd": (1 - alpha) * soft_loss}``.

    ``alpha`` is the weight of the hard-label cross-entropy, as in the seed article; with
    ``alpha=0`` the labels are not used (they may be hidden) and the CE term is 0.
    ``soft_loss(student_logits, target_logits, T)`` defaults to :func:`kd_loss`.
    """
    check_weight(alpha, "alpha")
    kd = soft_loss(student_logits, target_logits, T)
    if labels.shape != student_logits.shape[:1]:
        raise ValueError(f"labels must have shape ({student_logits.shape[0]},) to match the "
                         f"logits, got {tuple(labels.shape)}")
    ce = alpha * F.cross_entropy(student_logits, labels) if alpha > 0 else kd.new_zeros(())
    return {"ce": ce, "kd": (1 - alpha) * kd}


def distillation_loss(student_logits: torch.Tensor, target_logits: torch.Tensor,
                      labels: torch.Tensor, T: float, alpha: float) -> torch.Tensor:
    """``alpha * CE(student, labels) + (1 - alpha) * kd_loss(student, teacher, T)``."""
    return sum(distillation_terms(student_logits, target_logits, labels, T, alpha).values())


def _kl_rows(log_p: torch.Tensor, log_q: torch.Tensor) -> torch.Tensor:
    """``KL(p || q)`` for each row, from log-probabilities.

    A class with ``p = 0`` contributes 0; one with ``p > 0 = q`` makes the row ``+inf``, as in
    the math.
    """
    log_p = finite_log_probs(log_p)
    return (log_p.exp() * (log_p - log_q)).sum(1)


def soft_cross_entropy(student_logits: torch.Tensor, target_logits: torch.Tensor,
                       T: float = 1.0) -> torch.Tensor:
    """Cross-entropy with the teacher's distribution as the target: ``-sum p_t log p_s``.

    It equals ``KL(p_t || p_s)`` plus the teacher's entropy, which the student cannot change:
    same gradient as the KL divergence, a different value.
    """
    log_s, log_t = _log_probs(student_logits, target_logits, T)
    return -(log_t.exp() * log_s).sum(1).mean() * T**2


def symmetric_kl_loss(student_logits: torch.Tensor, target_logits: torch.Tensor,
                      T: float = 1.0) -> torch.Tensor:
    """``(KL(p_t || p_s) + KL(p_s || p_t)) / 2``: what PaddleClas's SSLD code calls "JS".

    PaddleClas multiplies each term by the number of classes and averages over the batch and the
    classes, which comes to this: the sum over the classes, averaged over the batch.
    """
    log_s, log_t = _log_probs(student_logits, target_logits, T)
    return non_negative((_kl_rows(log_t, log_s) + _kl_rows(log_s, log_t)).mean() / 2) * T**2


def js_divergence_loss(student_logits: torch.Tensor, target_logits: torch.Tensor,
                       T: float = 1.0) -> torch.Tensor:
    """The Jensen-Shannon divergence ``(KL(p_t || m) + KL(p_s || m)) / 2`` with ``m`` their mean.

    Bounded by ``log 2`` (times ``T**2``), symmetric, zero only for equal distributions.
    """
    log_s, log_t = _log_probs(student_logits, target_logits, T)
    log_m = torch.logaddexp(log_s, log_t) - math.log(2)
    return non_negative((_kl_rows(log_t, log_m) + _kl_rows(log_s, log_m)).mean() / 2) * T**2


def reverse_kl_loss(student_logits: torch.Tensor, target_logits: torch.Tensor,
                    T: float = 1.0) -> torch.Tensor:
    """``KL(p_s || p_t)``, batch mean, times ``T**2``: the reverse of :func:`kd_loss`.

    Forward KL (:func:`kd_loss`) is large where the teacher has mass the student lacks, so the
    student spreads out to cover every mode; reverse KL is large where the student puts mass the
    teacher lacks, so the student settles on the modes it can fit (MiniLLM, Gu et al., 2024).
    """
    if torch.isneginf(target_logits).any():
        raise ValueError("target_logits have -inf entries (a teacher's top-k logits, say): "
                         "reverse KL is infinite wherever the student gives such a token "
                         "probability; use the full logits, or kd_loss or GeneralizedJSD, "
                         "which stay finite")
    log_s, log_t = _log_probs(student_logits, target_logits, T)
    return non_negative(_kl_rows(log_s, log_t).mean()) * T**2


@dataclass(frozen=True)
class GeneralizedJSD:
    """The generalized Jensen-Shannon divergence of GKD (Agarwal et al., 2024), a soft loss:
    ``beta * KL(p_t || m) + (1 - beta) * KL(p_s || m)`` with ``m = beta * p_t + (1 - beta) *
    p_s``, batch mean, times ``T**2``.

    ``beta = 0.5`` is the Jensen-Shannon divergence. For small ``beta`` it is about ``beta``
    times forward KL, for ``beta`` near 1 about ``1 - beta`` times reverse KL; as TRL's
    ``GKDTrainer`` does, ``beta=0`` and ``beta=1`` mean forward KL (:func:`kd_loss`) and
    reverse KL (:func:`reverse_kl_loss`) themselves, since the formula is 0 there.
    """

    beta: float

    def __post_init__(self) -> None:
        check_weight(self.beta, "beta")

    def __call__(self, student_logits: torch.Tensor, target_logits: torch.Tensor,
                 T: float = 1.0) -> torch.Tensor:
        if self.beta == 0:
            return kd_loss(student_logits, target_logits, T)
        if self.beta == 1:
            return reverse_kl_loss(student_logits, target_logits, T)
        log_s, log_t = _log_probs(student_logits, target_logits, T)
        log_m = torch.logaddexp(log_t + math.log(self.beta), log_s + math.log(1 - self.beta))
        divergence = (self.beta * _kl_rows(log_t, log_m)
                      + (1 - self.beta) * _kl_rows(log_s, log_m)).mean()
        return non_negative(divergence) * T**2


SOFT_LOSSES: dict[str, SoftLoss] = {
    "soft CE": soft_cross_entropy,
    "KL": kd_loss,
    "symmetric KL (PaddleClas 'JS')": symmetric_kl_loss,
    "JS": js_divergence_loss,
}


def standardize_logits(logits: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """Each row's z-score, ``(z - mean) / (std + eps)``: Sun et al.'s logit standardization.

    The std is the sample (unbiased) one, and ``eps`` 1e-7, as in the authors' code. A row of
    equal logits becomes zeros. The softmax of a z-scored row depends only on the *relations*
    between the logits, not on their scale or shift.
    """
    if logits.dim() != 2 or logits.shape[1] < 2:
        raise ValueError(f"logits must be 2-D (batch, classes) with at least 2 classes, got "
                         f"shape {tuple(logits.shape)}")
    std, mean = torch.std_mean(logits, dim=1, keepdim=True)
    return (logits - mean) / (std + eps)


def check_targets(labels: torch.Tensor, logits: torch.Tensor) -> None:
    """Raise ``ValueError`` unless ``labels`` are one class index per row of ``logits``."""
    if labels.shape != logits.shape[:1]:
        raise ValueError(f"labels must have shape ({logits.shape[0]},) to match the logits, got "
                         f"{tuple(labels.shape)}")
    if labels.numel() and (labels.min() < 0 or labels.max() >= logits.shape[1]):
        raise ValueError(f"labels must be class indices in 0..{logits.shape[1] - 1} (decoupled "
                         f"KD needs every sample's true class), got {int(labels.min())} to "
                         f"{int(labels.max())}")


def _target_and_rest(log_p: torch.Tensor, labels: torch.Tensor
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """From log-probabilities ``(B, C)``: the binary ``log [p_target, 1 - p_target]`` ``(B, 2)``
    and the log-distribution over the ``C - 1`` other classes, renormalized ``(B, C - 1)``."""
    is_target = F.one_hot(labels, log_p.shape[1]).bool()
    log_target = log_p.gather(1, labels[:, None])
    others = log_p[~is_target].view(log_p.shape[0], -1)
    log_rest = others.logsumexp(1, keepdim=True)
    return torch.cat([log_target, log_rest], 1), F.log_softmax(others, dim=1)


def decoupled_kd_terms(student_logits: torch.Tensor, target_logits: torch.Tensor,
                       labels: torch.Tensor, T: float) -> dict[str, torch.Tensor]:
    """Zhao et al.'s split of the KD loss at temperature ``T``: ``{"tckd": ..., "nckd": ...}``.

    TCKD is the KL divergence between the binary distributions ``[p_target, 1 - p_target]`` of
    teacher and student; NCKD the KL divergence between their distributions over the non-target
    classes, renormalized. Both are batch means times ``T**2``. Per sample,
    ``KL(p_t || p_s) = TCKD + (1 - p_target of the teacher) * NCKD``: plain KD weights NCKD
    down where the teacher is confident. Computed like :func:`kd_loss` (checked, float32 at
    least, the target as a constant).
    """
    log_s, log_t = _log_probs(student_logits, target_logits, T)
    check_targets(labels, log_s)
    binary_s, rest_s = _target_and_rest(log_s, labels)
    binary_t, rest_t = _target_and_rest(log_t, labels)
    return {"tckd": non_negative(_kl_rows(binary_t, binary_s).mean()) * T**2,
            "nckd": non_negative(_kl_rows(rest_t, rest_s).mean()) * T**2}


def decoupled_kd_loss(student_logits: torch.Tensor, target_logits: torch.Tensor,
                      labels: torch.Tensor, T: float = 4.0, alpha: float = 1.0,
                      beta: float = 8.0) -> torch.Tensor:
    """``alpha * TCKD + beta * NCKD`` (:func:`decoupled_kd_terms`); the defaults are the DKD
    paper's CIFAR-100 setting (Zhao et al., 2022)."""
    check_non_negative(alpha, "alpha", "the weight of TCKD; the DKD paper uses 1")
    check_non_negative(beta, "beta", "the weight of NCKD; the DKD paper uses 8 on CIFAR-100")
    terms = decoupled_kd_terms(student_logits, target_logits, labels, T)
    return alpha * terms["tckd"] + beta * terms["nckd"]
