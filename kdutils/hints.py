"""Feature distillation ("hints"): the student's hidden features pulled towards the teacher's."""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .data import Batch, ImageDataset, iterate_batches
from .checks import check_weight
from .fingerprint import check_outputs_match, tag_outputs
from .losses import pool_features
from .models import ConvNet
from .train import EVAL_BATCH, History, freeze, memory_format_for, train_loop

HintLoss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


class HintStudent(nn.Module):
    """A student with an optional trainable regressor; returns ``(logits, hint features)``.

    The hint features are the student's feature map, passed through ``regressor`` when one is
    given. The regressor's weights train with the student's and are not needed at test time.
    """

    def __init__(self, student: ConvNet, regressor: nn.Module | None = None) -> None:
        super().__init__()
        self.student = student
        self.regressor = regressor

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits, feature_map = self.student.forward_with_features(x)
        return logits, feature_map if self.regressor is None else self.regressor(feature_map)


@torch.no_grad()
def teacher_features(teacher: ConvNet, data: ImageDataset, pooled_size: int,
                     batch_size: int = EVAL_BATCH) -> dict[str, torch.Tensor]:
    """:func:`~kdutils.train.freeze` ``teacher`` and compute, once, for every sample of ``data``.

    Returns ``{"logits", "feature_map", "pooled"}`` on the CPU in dataset order, each tagged
    with ``data``'s fingerprint, where ``pooled`` is the flattened feature map averaged down to
    ``pooled_size`` values (:func:`~kdutils.losses.pool_features`). Look them up by sample index
    while training.
    """
    freeze(teacher)
    device, memory_format = next(teacher.parameters()).device, memory_format_for(teacher)
    logits, maps = [], []
    for batch in iterate_batches(data, batch_size):
        inputs = batch.to(device, memory_format).inputs
        batch_logits, feature_map = teacher.forward_with_features(inputs)
        logits.append(batch_logits.cpu())
        maps.append(feature_map.cpu().contiguous())
    feature_map = torch.cat(maps)
    outputs = {"logits": torch.cat(logits), "feature_map": feature_map,
               "pooled": pool_features(feature_map, pooled_size)}
    return {name: tag_outputs(values, data) for name, values in outputs.items()}


def distill_hint(student: ConvNet, targets: torch.Tensor, train: ImageDataset,
                 test: ImageDataset, *, hint_loss: HintLoss, hint_weight: float,
                 ce_weight: float, epochs: int, lr: float, batch_size: int,
                 regressor: nn.Module | None = None, seed: int = 0,
                 lr_schedule: str = "constant", label: str = "hint",
                 progress: bool = True) -> History:
    """Train on ``ce_weight * CE + hint_weight * hint_loss(student features, teacher's)``.

    ``targets`` holds the teacher's features for every sample of ``train`` (a value of
    :func:`teacher_features`), looked up by sample index. With a ``regressor`` the student's
    feature map goes through it first, and the regressor trains along.
    """
    check_weight(hint_weight, "hint_weight")
    check_weight(ce_weight, "ce_weight")
    check_outputs_match(targets, train, "targets",
                        "compute them with kd.teacher_features(teacher, train, ...)")
    model = HintStudent(student, regressor)
    device = next(model.parameters()).device
    targets = targets.to(device)  # once, not per batch

    def terms(output: tuple[torch.Tensor, torch.Tensor], batch: Batch) -> dict[str, torch.Tensor]:
        logits, features = output
        teacher_batch = targets[batch.index.to(device)]
        return {"ce": ce_weight * F.cross_entropy(logits, batch.labels),
                "hint": hint_weight * hint_loss(features, teacher_batch)}

    return train_loop(model, train, test, terms, epochs=epochs, lr=lr, batch_size=batch_size,
                      seed=seed, lr_schedule=lr_schedule, label=label, progress=progress)
