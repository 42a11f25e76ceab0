"""Inference in one place: batches on the model's device, predictions, accuracy, teacher outputs."""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Iterator

import torch
import torch.nn.functional as F
from torch import nn

from ..data.datasets import (UNLABELLED, Augment, Batch, ImageDataset, check_labelled,
                             check_not_empty, iterate_batches)
from ..data.fingerprint import tag_outputs

if TYPE_CHECKING:
    from ..data.text import TokenWindows

EVAL_BATCH = 2000


def logits_of(output: torch.Tensor | tuple[torch.Tensor, ...]) -> torch.Tensor:
    """The logits of a model's output: the output itself, or the first item of a tuple."""
    return output[0] if isinstance(output, tuple) else output


def per_position(logits: torch.Tensor, labels: torch.Tensor,
                 *per_sample: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Sequence outputs as rows of a batch: ``(logits, labels, *per_sample)`` with logits
    ``(B, L, V)`` flattened to ``(B * L, V)``, the labels ``(B, L)`` and each of ``per_sample`` (a
    teacher's logits ``(B, L, V)``) the same way, and the positions labelled
    :data:`~kdutils.data.datasets.UNLABELLED` (a prompt) left out, so that a loss on ``(batch,
    classes)`` is the mean over the positions that count. Outputs of one row per sample pass through
    unchanged (their hidden labels are semi-supervised samples, kept)."""
    if logits.dim() != 3:
        return (logits, labels, *per_sample)
    keep = labels.flatten() != UNLABELLED
    return (logits.flatten(0, 1)[keep], labels.flatten()[keep],
            *(tensor.flatten(0, 1)[keep] for tensor in per_sample))


def memory_format_for(model: nn.Module) -> torch.memory_format:
    """``channels_last`` for models with 2-D convolutions (faster convolutions), else contiguous."""
    has_conv = any(isinstance(m, nn.Conv2d) for m in model.modules())
    return torch.channels_last if has_conv else torch.contiguous_format


def model_device(model: nn.Module) -> torch.device:
    """The device of ``model``'s parameters."""
    return next(model.parameters()).device


def model_batches(model: nn.Module, data: ImageDataset, batch_size: int, *,
                  shuffle: bool = False, generator: torch.Generator | None = None,
                  augment: Augment | None = None) -> Iterator[Batch]:
    """:func:`~kdutils.data.datasets.iterate_batches`, each batch moved to ``model``'s device and
    memory format (sample positions stay on the CPU)."""
    device, memory_format = model_device(model), memory_format_for(model)
    for batch in iterate_batches(data, batch_size, shuffle=shuffle, generator=generator,
                                 augment=augment):
        yield batch.to(device, memory_format)


@torch.no_grad()
def predict_logits(model: nn.Module, data: ImageDataset, batch_size: int = EVAL_BATCH
                   ) -> torch.Tensor:
    """Logits for every sample of ``data`` (on the CPU), in dataset order, computed in eval mode.

    ``model`` is put back in the mode it was in.
    """
    check_not_empty(data, "data")
    was_training = model.training
    model.eval()
    logits = torch.cat([logits_of(model(batch.inputs)).cpu()
                        for batch in model_batches(model, data, batch_size)])
    model.train(was_training)
    return logits


def labelled_predictions(model: nn.Module, data: ImageDataset) -> torch.Tensor:
    """The predicted classes for ``data``, after checking that its labels can be scored."""
    check_labelled(data, "data", "score only the labelled samples (data.select(data.labelled, "
                   "...))")
    logits = predict_logits(model, data)
    classes = logits.shape[1]
    if data.labels.min() < 0 or data.labels.max() >= classes:
        raise ValueError(f"data has labels from {int(data.labels.min())} to "
                         f"{int(data.labels.max())} but the model predicts {classes} classes "
                         f"(0 to {classes - 1}); use the model made for these labels")
    return logits.argmax(1)


@torch.no_grad()
def output_classes(model: nn.Module, data: ImageDataset) -> int:
    """How many classes ``model`` predicts: its logits' width on ``data``'s first sample (in
    eval mode, so nothing in the model changes; put back in the mode it was in)."""
    was_training = model.training
    model.eval()
    inputs = data.normalize(data.samples[:1]).to(model_device(model),
                                                memory_format=memory_format_for(model))
    classes = logits_of(model(inputs)).shape[-1]
    model.train(was_training)
    return classes


def check_labels_fit(model: nn.Module, data: ImageDataset, name: str) -> None:
    """Refuse labels of ``data`` that ``model`` has no output for, naming the first such sample
    (cross-entropy would fail on them, on CUDA with an unreadable device-side assert)."""
    if not data.labelled.any():
        return
    classes = output_classes(model, data)
    beyond = torch.nonzero(data.labelled & (data.labels >= classes)).flatten()
    if len(beyond):
        first = int(beyond[0])
        raise ValueError(f"{name}'s sample {first} has label {int(data.labels[first])}, but the "
                         f"model predicts {classes} classes (0 to {classes - 1}); build the model "
                         f"with {int(data.labels.max()) + 1} outputs, or leave out the "
                         f"{len(beyond):,} samples of other classes (data.select(...))")


def evaluate(model: nn.Module, data: ImageDataset) -> float:
    """Accuracy (%) of ``model`` on ``data``."""
    predictions = labelled_predictions(model, data)
    return (predictions == data.labels).double().mean().item() * 100


@torch.no_grad()
def next_token_scores(model: nn.Module, windows: "TokenWindows",
                      batch_size: int = 256) -> dict[str, float]:
    """A language model's held-out scores on ``windows`` (every position, in eval mode):
    ``test_bpc``, the mean cross-entropy of the next token in bits per character, and
    ``test_acc``, how often its most probable next token is the right one (%)."""
    check_not_empty(windows, "windows")
    was_training = model.training
    model.eval()
    nats, correct, positions = 0.0, 0, 0
    for batch in model_batches(model, windows, batch_size):
        logits, labels = per_position(logits_of(model(batch.inputs)), batch.labels)
        nats += F.cross_entropy(logits.float(), labels, reduction="sum").item()
        correct += int((logits.argmax(1) == labels).sum())
        positions += labels.numel()
    model.train(was_training)
    return {"test_bpc": nats / positions / math.log(2), "test_acc": correct / positions * 100}


def count_errors(model: nn.Module, data: ImageDataset) -> dict[int, int]:
    """Misclassified samples of ``data`` per true class (all classes): ``{0: 3, 1: 2, ...}``."""
    wrong = labelled_predictions(model, data) != data.labels
    counts = torch.bincount(data.labels[wrong], minlength=int(data.labels.max()) + 1)
    return dict(enumerate(counts.tolist()))


def freeze(teacher: nn.Module) -> nn.Module:
    """Put ``teacher`` in eval mode (no dropout) with gradients off; the one place that decides.

    Every function that uses a model as a teacher (:func:`teacher_logits`,
    :func:`~kdutils.training.distill.distill`, :func:`~kdutils.training.hints.teacher_features`)
    freezes it and leaves it frozen. To train such a model again, call
    ``model.requires_grad_(True)``: :func:`~kdutils.training.fit.fit` refuses a frozen model and
    says so."""
    teacher.eval()
    return teacher.requires_grad_(False)


def teacher_logits(teacher: nn.Module, data: ImageDataset) -> torch.Tensor:
    """:func:`freeze` ``teacher`` and return its logits for all of ``data`` (on the CPU), tagged
    with ``data``'s fingerprint.

    Computed once, they are looked up by sample index during distillation, which stays correct
    however the batches are shuffled (valid because the inputs are not randomly augmented); the
    tag lets :func:`~kdutils.training.distill.distill` check that they belong to its ``train``.
    """
    return tag_outputs(predict_logits(freeze(teacher), data), data)
