"""Correcting a student's output bias for a class that its transfer set never showed it."""
from __future__ import annotations

import copy

import torch
from torch import nn


def bias_for_count(logits: torch.Tensor, cls: int, count: int) -> float:
    """The bias to add to logit ``cls`` so that exactly ``count`` rows of ``logits`` predict it.

    Row ``i`` predicts ``cls`` once the bias exceeds ``max_{j != cls} logits[i, j] -
    logits[i, cls]``; the answer is the midpoint between the ``count``-th and the next smallest
    of these thresholds. No labels are needed: ``count`` can come from a teacher's predictions.
    """
    if logits.dim() != 2 or not 0 <= cls < logits.shape[1]:
        raise ValueError(f"logits must be 2-D (samples, classes) and cls one of its columns; "
                         f"got shape {tuple(logits.shape)} and cls={cls}")
    if not 0 < count < logits.shape[0]:
        raise ValueError(f"count must lie in 1..{logits.shape[0] - 1} (the rows of logits), "
                         f"got {count}")
    others = logits.clone()
    others[:, cls] = float("-inf")
    thresholds = (others.max(1).values - logits[:, cls]).sort().values
    return (thresholds[count - 1] + thresholds[count]).item() / 2


def shift_class_bias(model: nn.Module, cls: int, amount: float) -> nn.Module:
    """A copy of ``model`` whose last ``nn.Linear`` has ``amount`` added to the bias of ``cls``."""
    shifted = copy.deepcopy(model)
    last = [m for m in shifted.modules() if isinstance(m, nn.Linear)][-1]
    with torch.no_grad():
        last.bias[cls] += amount
    return shifted
