"""Training loops: fit (cross-entropy), distill (teacher logits looked up by sample index)."""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from .checkpoint import load_or_train
from .checks import check_count, check_loss_temperature, check_positive, check_weight
from .data import Augment, Batch, ImageDataset, check_labelled, iterate_batches
from .fingerprint import check_outputs_match, tag_outputs
from .losses import distillation_terms, kd_loss
from .optim import FusedAdam, learning_rates
from .regularize import apply_max_norm, check_max_norm
from .runtime import seed_everything

LossTerms = Callable[[Any, Batch], dict[str, torch.Tensor]]
EVAL_BATCH = 2000


@dataclass
class History:
    """One row per epoch of a training run.

    Keys: each named loss term as weighted in the loss and their sum ``loss`` (training means),
    ``train_acc`` (running accuracy over the epoch's batches, on the samples with labels), ``test_acc`` and ``seconds``.
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


def logits_of(output: torch.Tensor | tuple[torch.Tensor, ...]) -> torch.Tensor:
    """The logits of a model's output: the output itself, or the first item of a tuple."""
    return output[0] if isinstance(output, tuple) else output


def memory_format_for(model: nn.Module) -> torch.memory_format:
    """``channels_last`` for models with 2-D convolutions (faster convolutions), else contiguous."""
    has_conv = any(isinstance(m, nn.Conv2d) for m in model.modules())
    return torch.channels_last if has_conv else torch.contiguous_format


@torch.no_grad()
def predict_logits(model: nn.Module, data: ImageDataset, batch_size: int = EVAL_BATCH) -> torch.Tensor:
    """Logits for every sample of ``data`` (on the CPU), in dataset order, computed in eval mode."""
    was_training = model.training
    model.eval()
    device, memory_format = next(model.parameters()).device, memory_format_for(model)
    logits = torch.cat([logits_of(model(batch.to(device, memory_format).inputs)).cpu()
                        for batch in iterate_batches(data, batch_size)])
    model.train(was_training)
    return logits


def labelled_predictions(model: nn.Module, data: ImageDataset) -> torch.Tensor:
    """The predicted classes for ``data``, after checking that its labels can be scored."""
    check_not_empty(data, "data")
    check_labelled(data, "data", "score only the labelled samples (data.select(data.labelled, "
                   "...))")
    logits = predict_logits(model, data)
    classes = logits.shape[1]
    if data.labels.min() < 0 or data.labels.max() >= classes:
        raise ValueError(f"data has labels from {int(data.labels.min())} to "
                         f"{int(data.labels.max())} but the model predicts {classes} classes "
                         f"(0 to {classes - 1}); use the model made for these labels")
    return logits.argmax(1)


def evaluate(model: nn.Module, data: ImageDataset) -> float:
    """Accuracy (%) of ``model`` on ``data``."""
    predictions = labelled_predictions(model, data)
    return (predictions == data.labels).double().mean().item() * 100


def count_errors(model: nn.Module, data: ImageDataset) -> dict[int, int]:
    """Misclassified samples of ``data`` per true class, e.g. ``{0: 3, 1: 2, ...}`` (all classes)."""
    wrong = labelled_predictions(model, data) != data.labels
    counts = torch.bincount(data.labels[wrong], minlength=int(data.labels.max()) + 1)
    return dict(enumerate(counts.tolist()))


def freeze(teacher: nn.Module) -> nn.Module:
    """Put ``teacher`` in eval mode (no dropout) with gradients off; the one place that decides.

    Every function that uses a model as a teacher (:func:`teacher_logits`, :func:`distill`,
    :func:`~kdutils.hints.teacher_features`) freezes it and leaves it frozen. To train such a
    model again, call ``model.requires_grad_(True)``: :func:`fit` refuses a frozen model and
    says so.
    """
    teacher.eval()
    return teacher.requires_grad_(False)


def teacher_logits(teacher: nn.Module, data: ImageDataset) -> torch.Tensor:
    """:func:`freeze` ``teacher`` and return its logits for all of ``data`` (on the CPU), tagged
    with ``data``'s fingerprint.

    Computed once, they are looked up by sample index during distillation, which stays correct
    however the batches are shuffled (valid because the inputs are not randomly augmented); the
    tag lets :func:`distill` check that they belong to its ``train``.
    """
    return tag_outputs(predict_logits(freeze(teacher), data), data)


def check_not_empty(data: ImageDataset, name: str) -> None:
    """Raise ``ValueError`` if ``data`` has no samples."""
    if len(data) == 0:
        raise ValueError(f"{name} is empty (0 samples); check the selection or subset that "
                         "made it")


def check_trainable(model: nn.Module) -> None:
    """Raise ``ValueError`` unless some parameter of ``model`` requires a gradient."""
    if not any(p.requires_grad for p in model.parameters()):
        raise ValueError("model has no parameter that requires a gradient (a model used as a "
                         "teacher is frozen: see kd.teacher_logits); call "
                         "model.requires_grad_(True) to train it")


def _epoch_means(recorded: list[dict[str, torch.Tensor]], n_samples: int,
                 batch_size: int) -> dict[str, float]:
    """Per-sample means of each term over an epoch (the last batch may be smaller)."""
    device = next(iter(recorded[0].values())).device
    sizes = torch.full((len(recorded),), float(batch_size), device=device)
    sizes[-1] = n_samples - batch_size * (len(recorded) - 1)
    return {name: (torch.stack([step[name] for step in recorded]) * sizes).sum().item() / n_samples
            for name in recorded[0]}


@dataclass(frozen=True)
class _Step:
    """One optimization step: gradient, Adam at this step's learning rate, weight constraint."""

    optimizer: FusedAdam
    rates: Iterator[float]
    max_norm: float | None

    def apply(self, model: nn.Module, loss: torch.Tensor) -> None:
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.lr = next(self.rates)
        self.optimizer.step()
        if self.max_norm is not None:
            apply_max_norm(model, self.max_norm)


def _train_epoch(model: nn.Module, train: ImageDataset, loss_terms: LossTerms, step: _Step,
                 batch_size: int, order: torch.Generator, augment: Augment | None,
                 bar: tqdm) -> dict[str, float]:
    """One pass over ``train`` in shuffled batches; returns the epoch's term means and accuracy."""
    device, memory_format = next(model.parameters()).device, memory_format_for(model)
    model.train()
    recorded: list[dict[str, torch.Tensor]] = []
    correct: list[torch.Tensor] = []
    for batch in iterate_batches(train, batch_size, shuffle=True, generator=order,
                                 augment=augment):
        batch = batch.to(device, memory_format)
        output = model(batch.inputs)
        terms = loss_terms(output, batch)
        step.apply(model, sum(terms.values()))
        logits = logits_of(output)
        recorded.append({name: value.detach() for name, value in terms.items()})
        correct.append((logits.detach().argmax(1) == batch.labels).sum())
        bar.update()
    row = _epoch_means(recorded, len(train), batch_size)
    row["loss"] = sum(row.values())
    labelled = int(train.labelled.sum())  # hidden labels never match a prediction
    row["train_acc"] = torch.stack(correct).sum().item() / labelled * 100 if labelled else math.nan
    return row


def train_loop(model: nn.Module, train: ImageDataset, test: ImageDataset, loss_terms: LossTerms, *,
               epochs: int, lr: float, batch_size: int, seed: int, label: str,
               lr_schedule: str = "constant", augment: Augment | None = None,
               max_norm: float | None = None, progress: bool = True) -> History:
    """Adam on the sum of the named ``loss_terms(output, batch)``; one :class:`History` row per epoch.

    ``output`` is what the model returns: logits, or a tuple whose first item is the logits.

    ``lr_schedule``: ``"constant"`` or ``"cosine"`` (per-step decay from ``lr`` to 0).
    ``augment`` transforms each chunk of uint8 training images (e.g.
    :class:`~kdutils.regularize.RandomShift`); ``max_norm`` applies
    :func:`~kdutils.regularize.apply_max_norm` after every step. Batches go to the model's
    device. ``seed`` fixes the shuffling order, augmentation and dropout, so a run is repeatable
    on the CPU.
    """
    check_count(epochs, "epochs")
    check_count(batch_size, "batch_size")
    check_positive(lr, "lr", "Adam's usual learning rates are 1e-4 to 1e-2")
    check_not_empty(train, "train")
    check_not_empty(test, "test")
    check_trainable(model)
    if max_norm is not None:
        check_max_norm(max_norm)
    torch.manual_seed(seed)
    order = torch.Generator().manual_seed(seed)
    steps = math.ceil(len(train) / batch_size)
    model.to(memory_format=memory_format_for(model))
    rates = iter(learning_rates(lr_schedule, lr, epochs * steps))
    step = _Step(FusedAdam(model.parameters(), lr), rates, max_norm)
    history = History(label)
    with tqdm(total=epochs * steps, desc=label, disable=not progress, mininterval=0.5) as bar:
        for epoch in range(1, epochs + 1):
            start = time.perf_counter()
            row = {"epoch": epoch, **_train_epoch(model, train, loss_terms, step, batch_size,
                                                  order, augment, bar)}
            row["test_acc"] = evaluate(model, test)
            row["seconds"] = time.perf_counter() - start
            history.rows.append(row)
            bar.set_postfix(loss=f"{row['loss']:.3f}", test_acc=f"{row['test_acc']:.2f}%")
    return history


def fit(model: nn.Module, train: ImageDataset, test: ImageDataset, *, epochs: int, lr: float,
        batch_size: int, seed: int = 0, lr_schedule: str = "constant",
        augment: Augment | None = None, max_norm: float | None = None, label: str = "fit",
        progress: bool = True) -> History:
    """Train ``model`` with cross-entropy on the hard labels (options as in :func:`train_loop`)."""
    check_labelled(train, "train", "fit needs every label: distill with alpha=0 instead, or "
                   "train on the labelled part")

    def ce(logits: torch.Tensor, batch: Batch) -> dict[str, torch.Tensor]:
        return {"ce": F.cross_entropy(logits, batch.labels)}

    return train_loop(model, train, test, ce, epochs=epochs, lr=lr, batch_size=batch_size,
                      seed=seed, lr_schedule=lr_schedule, augment=augment, max_norm=max_norm,
                      label=label, progress=progress)


def cached_fit(make_model: Callable[[], nn.Module], name: str, train: ImageDataset,
               test: ImageDataset, *, epochs: int, lr: float, batch_size: int,
               seed: int = 0, lr_schedule: str = "constant", augment: Augment | None = None,
               max_norm: float | None = None, progress: bool = True
               ) -> tuple[nn.Module, History]:
    """Build a model after ``seed_everything(seed)`` and :func:`fit` it, or load it from the cache.

    The cache key holds everything that determines the result: architecture, the data (their
    :attr:`~kdutils.data.ImageDataset.fingerprint`, never their names), epochs, learning rate,
    batch size, seed, schedule, augmentation and constraint.
    """
    seed_everything(seed)
    model = make_model()
    options = {"lr_schedule": lr_schedule, "augment": augment, "max_norm": max_norm}
    key = {"architecture": repr(model), "train": train.fingerprint, "test": test.fingerprint,
           "epochs": epochs, "lr": lr, "batch_size": batch_size, "seed": seed,
           **{name: repr(value) for name, value in options.items()},
           "torch": torch.__version__.split("+")[0]}

    def train_rows(m: nn.Module) -> list[dict[str, float]]:
        return fit(m, train, test, epochs=epochs, lr=lr, batch_size=batch_size, seed=seed,
                   label=name, progress=progress, **options).rows

    model, rows = load_or_train(model, name, key, train_rows)
    return model, History(name, rows)


def distill(student: nn.Module, teacher: nn.Module, train: ImageDataset, test: ImageDataset, *,
            T: float, alpha: float, epochs: int, lr: float, batch_size: int, seed: int = 0,
            lr_schedule: str = "constant", cached_logits: torch.Tensor | None = None,
            soft_loss: Callable[..., torch.Tensor] = kd_loss, label: str = "distill",
            progress: bool = True) -> History:
    """Train ``student`` on ``alpha * CE + (1 - alpha) * soft_loss(T)`` against a frozen ``teacher``.

    ``soft_loss`` defaults to :func:`~kdutils.losses.kd_loss` (see
    :data:`~kdutils.divergences.SOFT_LOSSES` for others). With ``alpha=0`` the student learns from
    the teacher alone, and ``train`` may hide labels (:meth:`ImageDataset.hide_labels`).

    The teacher is put in eval mode with gradients off and its logits are computed once (or taken
    from ``cached_logits``, the output of :func:`teacher_logits` on ``train``, to share them
    between runs), then looked up by each batch's sample indices. That is why there is no
    ``augment`` here: the logits of a randomly shifted image would differ from the cached ones.
    """
    check_loss_temperature(T, next(student.parameters()).dtype)
    check_weight(alpha, "alpha")
    if alpha > 0:
        check_labelled(train, "train", "set alpha=0 (soft labels only) to use unlabelled samples")
    freeze(teacher)
    logits = teacher_logits(teacher, train) if cached_logits is None else cached_logits
    check_outputs_match(logits, train, "cached_logits",
                        "compute them with kd.teacher_logits(teacher, train)")
    device = next(student.parameters()).device
    logits = logits.to(device)  # once, not per batch

    def terms(student_logits: torch.Tensor, batch: Batch) -> dict[str, torch.Tensor]:
        teacher_batch = logits[batch.index.to(device)]
        return distillation_terms(student_logits, teacher_batch, batch.labels, T, alpha,
                                  soft_loss)

    return train_loop(student, train, test, terms, epochs=epochs, lr=lr, batch_size=batch_size,
                      seed=seed, lr_schedule=lr_schedule, label=label, progress=progress)
