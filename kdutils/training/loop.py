"""The one training loop: minimize a sum of named loss terms over shuffled batches, and record
each term, the training accuracy and the test scores per epoch in a :class:`History`. Fitting
(:mod:`kdutils.training.fit`) and every kind of distillation (:mod:`kdutils.training.distill`,
hints, online, SSLD) are loss terms on top of it."""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from torch import nn
from torch.optim.lr_scheduler import CosineAnnealingLR, LRScheduler

from ..checks import check_count, check_positive
from ..data.datasets import (UNLABELLED, Batch, ImageDataset, Augment, check_labelled,
                             check_not_empty)
from ..data.text import TokenWindows
from ..inference.predict import (check_labels_fit, evaluate, logits_of, memory_format_for,
                                 model_batches, next_token_scores)
from .progress import progress_bar
from .regularize import apply_max_norm, check_max_norm

LossTerms = Callable[[Any, Batch], dict[str, torch.Tensor]]
LR_SCHEDULES = ("constant", "cosine")
OPTIMIZERS = ("adam", "sgd")
SGD_MOMENTUM = 0.9


@dataclass
class History:
    """One row per epoch of a training run.

    Keys: each named loss term as weighted in the loss and their sum ``loss`` (training means),
    ``train_acc`` (running accuracy over the epoch's batches, on the samples with labels),
    ``test_acc`` and ``seconds``.
    """

    label: str
    rows: list[dict[str, float]] = field(default_factory=list)

    def column(self, key: str) -> list[float]:
        """The values of ``key`` over the epochs."""
        return [row[key] for row in self.rows]

    @property
    def final_accuracy(self) -> float:
        """Test accuracy (%) after the last epoch."""
        return self.rows[-1]["test_acc"]


def check_run(model: nn.Module, train: ImageDataset, test: ImageDataset, *, epochs: int,
              lr: float, batch_size: int, optimizer: str = "adam") -> None:
    """Refuse, before any work, settings and data that a training run cannot use."""
    check_count(epochs, "epochs")
    check_count(batch_size, "batch_size")
    check_optimizer(optimizer)
    check_positive(lr, "lr", "Adam's usual learning rates are 1e-4 to 1e-2, SGD's 1e-3 to 1e-1")
    check_not_empty(train, "train")
    check_not_empty(test, "test")
    check_labelled(test, "test", "the test set is scored after every epoch: give it its labels")
    check_trainable(model)
    check_labels_fit(model, train, "train")
    check_labels_fit(model, test, "test")


def check_trainable(model: nn.Module) -> None:
    """Raise ``ValueError`` unless some parameter of ``model`` requires a gradient."""
    if not any(p.requires_grad for p in model.parameters()):
        raise ValueError("model has no parameter that requires a gradient (a model used as a "
                         "teacher is frozen: see kd.teacher_logits); call "
                         "model.requires_grad_(True) to train it")


def check_optimizer(optimizer: str) -> None:
    """Raise ``ValueError`` unless ``optimizer`` is one of :data:`OPTIMIZERS`."""
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {optimizer!r}")


def make_optimizer(parameters: list[nn.Parameter], optimizer: str,
                   lr: float) -> torch.optim.Optimizer:
    """``"adam"``: ``torch.optim.Adam`` with PyTorch's defaults; ``"sgd"``: ``torch.optim.SGD``
    with Nesterov momentum :data:`SGD_MOMENTUM`, the optimizer of the 2012-2015 papers. Both
    fused. ``optimizer`` has passed :func:`check_run`."""
    if optimizer == "adam":
        return torch.optim.Adam(parameters, lr=lr, fused=True)
    return torch.optim.SGD(parameters, lr=lr, momentum=SGD_MOMENTUM, nesterov=True, fused=True)


def optimizer_key(optimizer: str) -> dict[str, str]:
    """The optimizer's part of a cache key: empty for Adam, the default, so that runs cached
    before the choice existed keep their keys."""
    return {} if optimizer == "adam" else {"optimizer": optimizer}


def _epoch_means(recorded: list[dict[str, torch.Tensor]], n_samples: int,
                 batch_size: int) -> dict[str, float]:
    """Per-sample means of each term over an epoch (the last batch may be smaller)."""
    device = next(iter(recorded[0].values())).device
    sizes = torch.full((len(recorded),), float(batch_size), device=device)
    sizes[-1] = n_samples - batch_size * (len(recorded) - 1)
    return {name: (torch.stack([step[name] for step in recorded]) * sizes).sum().item() / n_samples
            for name in recorded[0]}


def learning_rate_scheduler(optimizer: torch.optim.Optimizer, lr_schedule: str,
                            total_steps: int) -> LRScheduler | None:
    """None for ``"constant"``; for ``"cosine"``, a decay to 0 over ``total_steps`` steps."""
    if lr_schedule not in LR_SCHEDULES:
        raise ValueError(f"lr_schedule must be one of {LR_SCHEDULES}, got {lr_schedule!r}")
    return CosineAnnealingLR(optimizer, T_max=total_steps) if lr_schedule == "cosine" else None


@dataclass(frozen=True)
class _Step:
    """One optimization step: gradient, optimizer, the schedule's next rate, weight constraint."""

    optimizer: torch.optim.Optimizer
    scheduler: LRScheduler | None
    max_norm: float | None

    def apply(self, model: nn.Module, loss: torch.Tensor) -> None:
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        if self.scheduler is not None:
            self.scheduler.step()
        if self.max_norm is not None:
            apply_max_norm(model, self.max_norm)


def _train_epoch(model: nn.Module, train: ImageDataset, loss_terms: LossTerms, step: _Step,
                 batch_size: int, order: torch.Generator, augment: Augment | None,
                 prepare: Callable[[Batch], Batch], bar: Any) -> dict[str, float]:
    """One pass over ``train`` in shuffled batches, each through ``prepare`` before the model
    sees it; returns the epoch's term means and accuracy."""
    model.train()
    recorded: list[dict[str, torch.Tensor]] = []
    correct: list[torch.Tensor] = []
    labelled: list[torch.Tensor] = []
    for batch in model_batches(model, train, batch_size, shuffle=True, generator=order,
                               augment=augment):
        batch = prepare(batch)
        output = model(batch.inputs)
        terms = loss_terms(output, batch)
        step.apply(model, sum(terms.values()))
        logits = logits_of(output)
        recorded.append({name: value.detach() for name, value in terms.items()})
        correct.append((logits.detach().argmax(-1) == batch.labels).sum())
        labelled.append((batch.labels != UNLABELLED).sum())  # hidden labels never match
        bar.update()
    row = _epoch_means(recorded, len(train), batch_size)
    row["loss"] = sum(row.values())
    known = torch.stack(labelled).sum().item()
    row["train_acc"] = torch.stack(correct).sum().item() / known * 100 if known else math.nan
    return row


def _unchanged(batch: Batch) -> Batch:
    return batch


def test_scores(model: nn.Module, test: ImageDataset) -> dict[str, float]:
    """``{"test_acc": accuracy}``; for text windows also ``"test_bpc"``, the held-out bits per
    character (:func:`~kdutils.inference.predict.next_token_scores`); or the model's own
    ``test_scores(test)`` when it has one (a :class:`~kdutils.training.online.Cohort` reports each
    member)."""
    if hasattr(model, "test_scores"):
        return model.test_scores(test)
    if isinstance(test, TokenWindows):
        return next_token_scores(model, test)
    return {"test_acc": evaluate(model, test)}


def train_loop(model: nn.Module, train: ImageDataset, test: ImageDataset, loss_terms: LossTerms, *,
               epochs: int, lr: float, batch_size: int, seed: int, label: str,
               lr_schedule: str = "constant", augment: Augment | None = None,
               max_norm: float | None = None, optimizer: str = "adam",
               prepare: Callable[[Batch], Batch] | None = None,
               progress: bool = True) -> History:
    """Minimize the sum of the named ``loss_terms(output, batch)``; one :class:`History` row per
    epoch.

    ``output`` is what the model returns: logits, or a tuple whose first item is the logits.
    ``optimizer`` (see :func:`make_optimizer`): ``"adam"`` (default) or ``"sgd"``, over the
    parameters that require a gradient. ``lr_schedule``: ``"constant"`` or ``"cosine"``
    (``torch.optim.lr_scheduler.CosineAnnealingLR``, stepped per batch, from ``lr`` to 0).
    ``augment`` transforms each chunk of uint8 training images (e.g.
    :class:`~kdutils.training.regularize.RandomShift`); ``max_norm`` applies
    :func:`~kdutils.training.regularize.apply_max_norm` after every step. Batches go to the model's
    device. ``prepare`` turns each batch into the one trained on (e.g.
    :meth:`~kdutils.training.generated_text.OnPolicy.batches`: the student's own samples). ``seed``
    fixes the shuffling order, augmentation and dropout, so a run is repeatable on the CPU."""
    check_run(model, train, test, epochs=epochs, lr=lr, batch_size=batch_size,
              optimizer=optimizer)
    if max_norm is not None:
        check_max_norm(max_norm)
    torch.manual_seed(seed)
    order = torch.Generator().manual_seed(seed)
    steps = math.ceil(len(train) / batch_size)
    model.to(memory_format=memory_format_for(model))
    trainable = [p for p in model.parameters() if p.requires_grad]
    updater = make_optimizer(trainable, optimizer, lr)
    scheduler = learning_rate_scheduler(updater, lr_schedule, epochs * steps)
    step = _Step(updater, scheduler, max_norm)
    history = History(label)
    with progress_bar(epochs * steps, label, progress) as bar:
        for epoch in range(1, epochs + 1):
            start = time.perf_counter()
            row = {"epoch": epoch, **_train_epoch(model, train, loss_terms, step, batch_size,
                                                  order, augment, prepare or _unchanged, bar)}
            row.update(test_scores(model, test))
            row["seconds"] = time.perf_counter() - start
            history.rows.append(row)
            bar.set_postfix(loss=f"{row['loss']:.3f}", test_acc=f"{row['test_acc']:.2f}%")
    return history
