"""Distillation losses as pure functions of tensors, with checked inputs."""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from .checks import check_loss_temperature, check_temperature, check_weight


def check_logits(student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> None:
    """Raise ``ValueError`` unless both are 2-D ``(batch, classes)`` tensors of the same shape."""
    for name, logits in (("student_logits", student_logits), ("teacher_logits", teacher_logits)):
        if logits.dim() != 2:
            raise ValueError(f"{name} must be 2-D (batch, classes), got shape "
                             f"{tuple(logits.shape)}; flatten or select the logits first")
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(f"student_logits {tuple(student_logits.shape)} and teacher_logits "
                         f"{tuple(teacher_logits.shape)} must have the same shape (same batch "
                         "order, same classes)")


def softmax_with_temperature(logits: torch.Tensor, T: float) -> torch.Tensor:
    """``softmax(logits / T)`` over the last dimension; larger ``T`` gives softer distributions."""
    check_temperature(T)
    return F.softmax(logits / T, dim=-1)


def teacher_log_probs(teacher_logits: torch.Tensor, T: float) -> torch.Tensor:
    """``log_softmax(teacher_logits / T)`` as constants, with ``-inf`` (probability 0) replaced by
    the dtype's lowest finite value, so that ``0 * log 0`` terms give 0 instead of NaN."""
    log_p = F.log_softmax(teacher_logits.detach() / T, dim=1)
    return log_p.clamp(min=torch.finfo(log_p.dtype).min)


def kd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, T: float) -> torch.Tensor:
    """Hinton's soft-target loss: ``KL(p_teacher^T || p_student^T)``, batch mean, times ``T**2``.

    The ``T**2`` keeps the gradient's size independent of ``T`` (Hinton et al., 2015, section 2).
    The teacher's logits are treated as constants (no gradient flows into them); a teacher logit
    of ``-inf`` (a masked class) contributes nothing. ``T`` above
    :data:`~kdutils.checks.MAX_LOSS_TEMPERATURE` for the logits' dtype is refused.
    """
    check_loss_temperature(T, student_logits.dtype)
    check_logits(student_logits, teacher_logits)
    log_p_student = F.log_softmax(student_logits / T, dim=1)
    log_p_teacher = teacher_log_probs(teacher_logits, T)
    kl = F.kl_div(log_p_student, log_p_teacher, reduction="batchmean", log_target=True)
    return kl.clamp(min=0) * T**2  # rounding can push a near-zero KL below 0; the true value is not


def distillation_terms(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                       labels: torch.Tensor, T: float, alpha: float,
                       soft_loss: Callable[..., torch.Tensor] = kd_loss
                       ) -> dict[str, torch.Tensor]:
    """The two weighted terms ``{"ce": alpha * CE, "kd": (1 - alpha) * soft_loss}``.

    ``alpha`` is the weight of the hard-label cross-entropy, as in the seed article; with
    ``alpha=0`` the labels are not used (they may be hidden) and the CE term is 0.
    ``soft_loss(student_logits, teacher_logits, T)`` defaults to :func:`kd_loss`.
    """
    check_weight(alpha, "alpha")
    kd = soft_loss(student_logits, teacher_logits, T)
    if labels.shape != student_logits.shape[:1]:
        raise ValueError(f"labels must have shape ({student_logits.shape[0]},) to match the "
                         f"logits, got {tuple(labels.shape)}")
    ce = alpha * F.cross_entropy(student_logits, labels) if alpha > 0 else kd.new_zeros(())
    return {"ce": ce, "kd": (1 - alpha) * kd}


def distillation_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                      labels: torch.Tensor, T: float, alpha: float) -> torch.Tensor:
    """``alpha * CE(student, labels) + (1 - alpha) * kd_loss(student, teacher, T)``."""
    return sum(distillation_terms(student_logits, teacher_logits, labels, T, alpha).values())


def check_hint_shapes(student_features: torch.Tensor, teacher_features: torch.Tensor) -> None:
    """Raise ``ValueError`` unless a hint loss can compare the two feature tensors as they are."""
    if student_features.shape != teacher_features.shape:
        raise ValueError(
            f"student_features {tuple(student_features.shape)} and teacher_features "
            f"{tuple(teacher_features.shape)} must have the same shape for a hint loss: pool the "
            "teacher's features down to the student's size (kdutils.pool_features, as the "
            "cosine hint does) or map the student's features to the teacher's with a trainable "
            "regressor (kdutils.hint_regressor)")


def pool_features(features: torch.Tensor, size: int) -> torch.Tensor:
    """Flatten ``features`` per sample and average neighbouring values down to ``size`` of them.

    The tutorial's ``avg_pool1d(flattened, 2)``: 2,048 teacher values become 1,024.
    """
    flat = features.flatten(1)
    if size < 1 or flat.shape[1] % size:
        raise ValueError(f"size must divide the {flat.shape[1]} flattened features, got {size}")
    return F.avg_pool1d(flat.unsqueeze(1), flat.shape[1] // size).squeeze(1)


def cosine_hint_loss(student_features: torch.Tensor, teacher_features: torch.Tensor
                     ) -> torch.Tensor:
    """Mean of ``1 - cos(student, teacher)`` over the batch, on flattened features.

    Equal to ``nn.CosineEmbeddingLoss()`` with a target of ones, as in the tutorial; the teacher's
    features are constants.
    """
    student_flat, teacher_flat = student_features.flatten(1), teacher_features.detach().flatten(1)
    check_hint_shapes(student_flat, teacher_flat)
    return (1 - F.cosine_similarity(student_flat, teacher_flat, dim=1)).mean()


def mse_hint_loss(student_features: torch.Tensor, teacher_features: torch.Tensor) -> torch.Tensor:
    """Mean squared error between feature maps (FitNets' hint loss); the teacher's are constants."""
    check_hint_shapes(student_features, teacher_features)
    return F.mse_loss(student_features, teacher_features.detach())
