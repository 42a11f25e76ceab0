"""Semi-supervised distillation set-ups (PaddleClas SSLD): splits, selection, teacher BN mode."""
from __future__ import annotations

import copy

import torch
from torch import nn

from ..data.datasets import ImageDataset
from ..data.fingerprint import tag_outputs
from ..inference.predict import freeze, model_batches

BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)


def labelled_split(data: ImageDataset, per_class: int, seed: int = 0
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """Positions ``(labelled, pool)``: ``per_class`` random samples of each class, and the rest.

    Both are sorted. Hide the pool's labels with :meth:`ImageDataset.hide_labels`.
    """
    counts = torch.bincount(data.labels)
    if not 0 < per_class < int(counts.min()):
        raise ValueError(f"per_class must be between 1 and {int(counts.min()) - 1} (the smallest "
                         f"class has {int(counts.min())} samples), got {per_class}")
    order = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))
    chosen = torch.cat([order[data.labels[order] == c][:per_class] for c in range(len(counts))])
    is_chosen = torch.zeros(len(data), dtype=torch.bool)
    is_chosen[chosen] = True
    return chosen.sort().values, torch.nonzero(~is_chosen).squeeze(1)


def top_k_per_class(logits: torch.Tensor, k: int) -> torch.Tensor:
    """Positions of the ``k`` rows with the highest probability for each class, deduplicated.

    SSLD's selection of unlabelled images: rank the pool by the teacher's softmax probability of
    each class in turn and keep the top ``k`` of each. An image can rank high for two classes, so
    the result (sorted) can hold fewer than ``k * classes`` positions.
    """
    if logits.dim() != 2:
        raise ValueError(f"logits must be 2-D (samples, classes), got {tuple(logits.shape)}")
    if not 0 < k <= logits.shape[0]:
        raise ValueError(f"k must be between 1 and the {logits.shape[0]} rows, got {k}")
    top = logits.softmax(1).topk(k, dim=0).indices  # (k, classes)
    return top.flatten().unique()


@torch.no_grad()
def teacher_logits_batch_stats(teacher: nn.Module, data: ImageDataset, batch_size: int,
                               seed: int = 0) -> torch.Tensor:
    """The teacher's logits with its BatchNorm layers in train mode (batch statistics).

    SSLD compares soft labels from a teacher whose BN layers use each batch's own statistics with
    those of the usual eval mode (running statistics). Each sample's logits then depend on the
    other samples of its batch: here one shuffled pass in batches of ``batch_size`` (seeded),
    returned in dataset order and tagged with ``data``'s fingerprint. Dropout stays off, and
    ``teacher`` itself is left unchanged (a copy's running statistics absorb the updates).
    """
    model = freeze(copy.deepcopy(teacher))
    batch_norms = [m for m in model.modules() if isinstance(m, BATCH_NORMS)]
    if not batch_norms:
        raise ValueError("teacher has no BatchNorm layers, so its train and eval modes agree; "
                         "use a teacher built with batch_norm=True")
    for layer in batch_norms:
        layer.train()
    order = torch.Generator().manual_seed(seed)
    positions, outputs = [], []
    for batch in model_batches(model, data, batch_size, shuffle=True, generator=order):
        positions.append(batch.index)
        outputs.append(model(batch.inputs).cpu())
    shuffled = torch.cat(outputs)
    logits = torch.empty_like(shuffled)
    logits[torch.cat(positions)] = shuffled
    return tag_outputs(logits, data)
