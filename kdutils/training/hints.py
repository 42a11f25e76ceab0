"""Feature distillation ("hints"), all in one place: the hint losses, the pooling and the
trainable regressor that make the student's features comparable with the teacher's, the
teacher's features computed once, and the training run that pulls the student's features
towards them (FitNets; the PyTorch KD tutorial's cosine and regressor variants)."""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ..checks import check_weight
from ..data.datasets import Batch, ImageDataset, check_not_empty
from ..data.fingerprint import check_outputs_match, tag_outputs
from ..inference.predict import EVAL_BATCH, freeze, model_batches, model_device
from ..models.classifiers import ConvNet
from .loop import History, check_run, train_loop

HintLoss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


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


def hint_regressor(student_channels: int = 16, teacher_channels: int = 32) -> nn.Conv2d:
    """The tutorial's trainable regressor: a 3x3 convolution from the student's feature map's
    channels to the teacher's (FitNets' hint layer), trained with the student."""
    return nn.Conv2d(student_channels, teacher_channels, kernel_size=3, padding=1)


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
    """:func:`~kdutils.inference.predict.freeze` ``teacher`` and compute, once, for every sample of
    ``data``.

    Returns ``{"logits", "feature_map", "pooled"}`` on the CPU in dataset order, each tagged
    with ``data``'s fingerprint, where ``pooled`` is the flattened feature map averaged down to
    ``pooled_size`` values (:func:`pool_features`). Look them up by sample index
    while training.
    """
    check_not_empty(data, "data")
    freeze(teacher)
    logits, maps = [], []
    for batch in model_batches(teacher, data, batch_size):
        batch_logits, feature_map = teacher.forward_with_features(batch.inputs)
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
    feature map goes through it first, and the regressor trains along (moved to the student's
    device).
    """
    check_run(student, train, test, epochs=epochs, lr=lr, batch_size=batch_size)
    check_weight(hint_weight, "hint_weight")
    check_weight(ce_weight, "ce_weight")
    check_outputs_match(targets, train, "targets",
                        "compute them with kd.teacher_features(teacher, train, ...)")
    device = model_device(student)
    model = HintStudent(student, regressor).to(device)  # the regressor joins the student
    targets = targets.to(device)  # once, not per batch

    def terms(output: tuple[torch.Tensor, torch.Tensor], batch: Batch) -> dict[str, torch.Tensor]:
        logits, features = output
        teacher_batch = targets[batch.index.to(device)]
        return {"ce": ce_weight * F.cross_entropy(logits, batch.labels),
                "hint": hint_weight * hint_loss(features, teacher_batch)}

    return train_loop(model, train, test, terms, epochs=epochs, lr=lr, batch_size=batch_size,
                      seed=seed, lr_schedule=lr_schedule, label=label, progress=progress)
