"""Training loops: one loop over named loss terms, and fit (cross-entropy) and distill
(teacher logits looked up by sample index) on top of it."""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.optim.lr_scheduler import CosineAnnealingLR, LRScheduler

from .checkpoint import load_or_train
from .checks import check_count, check_loss_temperature, check_positive
from .data import UNLABELLED, Augment, Batch, ImageDataset, check_labelled, check_not_empty
from .generated_text import OnPolicy
from .fingerprint import content_fingerprint
from .identity import legacy_key, model_identity
from .losses import SoftLoss, kd_loss
from .objectives import HintonKD, Objective, objective_key
from .progress import progress_bar
from .predict import (check_labels_fit, evaluate, freeze, logits_of, memory_format_for,
                      model_batches, next_token_scores, per_position)
from .regularize import apply_max_norm, check_max_norm
from .runtime import seed_everything, torch_release
from .text import TokenWindows
from .teacher_outputs import (check_logits_of_teacher, check_teacher_view, live_logits,
                              teacher_entry, teacher_lookup)

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
    character (:func:`~kdutils.predict.next_token_scores`); or the model's own
    ``test_scores(test)`` when it has one (a :class:`~kdutils.online.Cohort` reports each
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
    :class:`~kdutils.regularize.RandomShift`); ``max_norm`` applies
    :func:`~kdutils.regularize.apply_max_norm` after every step. Batches go to the model's
    device. ``prepare`` turns each batch into the one trained on (e.g.
    :meth:`~kdutils.generated_text.OnPolicy.batches`: the student's own samples). ``seed`` fixes
    the shuffling order, augmentation and dropout, so a run is repeatable on the CPU.
    """
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


def fit(model: nn.Module, train: ImageDataset, test: ImageDataset, *, epochs: int, lr: float,
        batch_size: int, seed: int = 0, lr_schedule: str = "constant",
        augment: Augment | None = None, max_norm: float | None = None, optimizer: str = "adam",
        label: str = "fit", progress: bool = True) -> History:
    """Train ``model`` with cross-entropy on the hard labels (options as in :func:`train_loop`)."""
    if not isinstance(train, TokenWindows):  # windows leave their prompts out of the loss
        check_labelled(train, "train", "fit needs every label: distill with alpha=0 instead, "
                       "or train on the labelled part")

    def ce(logits: torch.Tensor, batch: Batch) -> dict[str, torch.Tensor]:
        return {"ce": F.cross_entropy(*per_position(logits, batch.labels))}

    return train_loop(model, train, test, ce, epochs=epochs, lr=lr, batch_size=batch_size,
                      seed=seed, lr_schedule=lr_schedule, augment=augment, max_norm=max_norm,
                      optimizer=optimizer, label=label, progress=progress)


def run_key(model: nn.Module, train: ImageDataset, test: ImageDataset,
            **settings: Any) -> dict[str, Any]:
    """A training run's cache key: the model (:func:`~kdutils.identity.model_identity`: repr,
    tensors' names, dtypes and shapes, and the code of classes of yours), the data's
    fingerprints (never their names), the run's ``settings`` and PyTorch's release (see
    :func:`~kdutils.runtime.torch_release`)."""
    return {**model_identity(model), "train": train.fingerprint, "test": test.fingerprint,
            **settings, "torch": torch_release()}


def cached_fit(make_model: Callable[[], nn.Module], name: str, train: ImageDataset,
               test: ImageDataset, *, epochs: int, lr: float, batch_size: int,
               seed: int = 0, lr_schedule: str = "constant", augment: Augment | None = None,
               max_norm: float | None = None, optimizer: str = "adam", progress: bool = True
               ) -> tuple[nn.Module, History]:
    """Build a model after ``seed_everything(seed)`` and :func:`fit` it, or load it from the cache.

    The cache key holds everything that determines the result: architecture, the data (their
    :attr:`~kdutils.data.ImageDataset.fingerprint`, never their names), epochs, learning rate,
    batch size, seed, schedule, augmentation, constraint and optimizer, and PyTorch's release
    (see :func:`torch_release`).
    """
    seed_everything(seed)
    model = make_model()
    options = {"lr_schedule": lr_schedule, "augment": augment, "max_norm": max_norm}
    key = run_key(model, train, test, epochs=epochs, lr=lr, batch_size=batch_size, seed=seed,
                  **{name: repr(value) for name, value in options.items()},
                  **optimizer_key(optimizer))

    def train_rows(m: nn.Module) -> list[dict[str, float]]:
        return fit(m, train, test, epochs=epochs, lr=lr, batch_size=batch_size, seed=seed,
                   optimizer=optimizer, label=name, progress=progress, **options).rows

    model, rows = load_or_train(model, name, key, train_rows, legacy_key=legacy_key(key))
    return model, History(name, rows)


def resolve_objective(T: float | None, alpha: float | None, soft_loss: SoftLoss,
                      objective: Objective | None) -> Objective:
    """``objective``, or Hinton's loss built from ``T`` and ``alpha``: exactly one of the two."""
    if objective is None:
        if T is None or alpha is None:
            raise ValueError("give T and alpha (Hinton's loss), or objective= (e.g. "
                             "kd.DecoupledKD())")
        return HintonKD(T, alpha, soft_loss)
    if T is not None or alpha is not None or soft_loss is not kd_loss:
        raise ValueError(f"objective={objective!r} sets its own temperature and weights: leave "
                         "T, alpha and soft_loss out")
    return objective


def _progress_counter(total_steps: int) -> Callable[[], float]:
    """A function that returns the fraction of training done, 0 at its first call, and counts
    the call as one step (the loss is computed once per step)."""
    done = [0]

    def progress() -> float:
        fraction = done[0] / total_steps
        done[0] += 1
        return fraction

    return progress


def distill(student: nn.Module, teacher: nn.Module, train: ImageDataset, test: ImageDataset, *,
            T: float | None = None, alpha: float | None = None, epochs: int, lr: float,
            batch_size: int, seed: int = 0, lr_schedule: str = "constant",
            cached_logits: torch.Tensor | None = None, augment: Augment | None = None,
            soft_loss: SoftLoss = kd_loss, objective: Objective | None = None,
            teacher_view: str = "same", view_logits: torch.Tensor | None = None,
            on_policy: OnPolicy | None = None, optimizer: str = "adam", label: str = "distill",
            progress: bool = True) -> History:
    """Train ``student`` against a frozen ``teacher``: on ``alpha * CE + (1 - alpha) *
    soft_loss(T)``, or on ``objective``'s terms (:mod:`kdutils.objectives`, e.g.
    ``kd.DecoupledKD()``).

    ``soft_loss`` defaults to :func:`~kdutils.losses.kd_loss` (see
    :data:`~kdutils.losses.SOFT_LOSSES` for others). With ``alpha=0`` the student learns from
    the teacher alone, and ``train`` may hide labels (:meth:`ImageDataset.hide_labels`).

    The teacher is put in eval mode with gradients off. Without ``augment`` its logits are
    computed once (or taken from ``cached_logits``, the output of :func:`teacher_logits` on
    ``train``, to share them between runs), then looked up by each batch's sample indices. With
    ``augment`` (e.g. :class:`~kdutils.regularize.RandomShift`) the student sees transformed
    images and ``teacher_view`` says what the teacher sees (:mod:`kdutils.teacher_outputs`):
    ``"same"`` (default: the student's view, a teacher pass per step, or a lookup in
    ``view_logits`` from :func:`~kdutils.teacher_outputs.teacher_view_logits`), ``"clean"`` (the
    untransformed image: stored logits) or ``"independent"`` (another random view: a lookup in
    ``view_logits``, computed if not given).

    ``on_policy`` (:class:`~kdutils.generated_text.OnPolicy`, for language models): a share of
    each batch is the student's own continuations of prompts, and the teacher runs live on
    every batch. The objective must not use the labels (``alpha=0``).
    """
    check_run(student, train, test, epochs=epochs, lr=lr, batch_size=batch_size,
              optimizer=optimizer)
    objective = resolve_objective(T, alpha, soft_loss, objective)
    check_loss_temperature(objective.T, next(student.parameters()).dtype)
    if objective.needs_labels:
        check_labelled(train, "train", "use an objective without the labels (alpha=0) to use "
                       "unlabelled samples")
    check_teacher_view(teacher_view, augment, cached_logits, view_logits)
    if on_policy is not None:
        check_on_policy(objective, augment, cached_logits, view_logits)
    freeze(teacher)
    teacher_batch = (live_logits(teacher, student) if on_policy is not None else
                     teacher_lookup(teacher, student, train, augment=augment,
                                    teacher_view=teacher_view, cached_logits=cached_logits,
                                    view_logits=view_logits, seed=seed))
    progress_done = _progress_counter(epochs * math.ceil(len(train) / batch_size))

    def terms(student_logits: torch.Tensor, batch: Batch) -> dict[str, torch.Tensor]:
        student, labels, teacher_rows = per_position(student_logits, batch.labels,
                                                     teacher_batch(batch))
        return objective.terms(student, teacher_rows, labels, progress_done())

    return train_loop(student, train, test, terms, epochs=epochs, lr=lr, batch_size=batch_size,
                      seed=seed, lr_schedule=lr_schedule, augment=augment, optimizer=optimizer,
                      prepare=None if on_policy is None else on_policy.batches(student, seed),
                      label=label, progress=progress)


def check_on_policy(objective: Objective, augment: Augment | None,
                    cached_logits: torch.Tensor | None, view_logits: torch.Tensor | None) -> None:
    """Refuse what on-policy distillation cannot use: labels (a sampled window has no true
    next tokens), augmentation, and stored teacher outputs (the teacher must see the samples)."""
    if objective.needs_labels:
        raise ValueError(f"on_policy trains on the student's samples, which have no true next "
                         f"tokens: use an objective without labels (alpha=0), got {objective!r}")
    if augment is not None or cached_logits is not None or view_logits is not None:
        raise ValueError("on_policy runs the teacher live on the student's samples: leave "
                         "augment, cached_logits and view_logits out")


def cached_distill(make_student: Callable[[], nn.Module], name: str, teacher: nn.Module,
                   train: ImageDataset, test: ImageDataset, *, T: float | None = None,
                   alpha: float | None = None, epochs: int, lr: float, batch_size: int,
                   seed: int = 0, lr_schedule: str = "constant",
                   cached_logits: torch.Tensor | None = None, augment: Augment | None = None,
                   objective: Objective | None = None, teacher_view: str = "same",
                   view_logits: torch.Tensor | None = None, on_policy: OnPolicy | None = None,
                   start_from: nn.Module | None = None, optimizer: str = "adam",
                   progress: bool = True) -> tuple[nn.Module, History]:
    """Build a student after ``seed_everything(seed)`` and :func:`distill` it, or load it from
    the cache.

    Keyed like :func:`cached_fit`, plus the objective (``T`` and ``alpha`` for Hinton's loss),
    ``augment`` and ``teacher_view`` when they differ from the defaults, and the teacher
    (:func:`~kdutils.teacher_outputs.teacher_entry`), so a retrained or edited teacher gets new
    students. ``cached_logits`` and ``view_logits`` are checked against the teacher
    (:func:`~kdutils.teacher_outputs.check_logits_of_teacher`) before they are used, even when
    the student comes from the cache. ``start_from``: a model whose weights the student starts
    from instead of its seed's initialization (GKD distils a student trained first); their
    fingerprint joins the key.
    """
    resolved = resolve_objective(T, alpha, kd_loss, objective)
    check_teacher_view(teacher_view, augment, cached_logits, view_logits)
    if cached_logits is not None:
        check_logits_of_teacher(cached_logits, teacher, train)
    if view_logits is not None:
        check_logits_of_teacher(view_logits, teacher, train, augment)
    seed_everything(seed)
    student = make_student()
    start = {}
    if start_from is not None:  # e.g. a student trained alone, distilled further (GKD)
        student.load_state_dict(start_from.state_dict())
        start = {"start_from": content_fingerprint(*start_from.state_dict().values())}
    loss = {"T": T, "alpha": alpha} if objective is None else {"objective": objective_key(resolved)}
    view = {} if augment is None or teacher_view == "same" else {"teacher_view": teacher_view}
    key = run_key(student, train, test, epochs=epochs, lr=lr, batch_size=batch_size, seed=seed,
                  lr_schedule=repr(lr_schedule), **loss, teacher=teacher_entry(teacher),
                  **({} if augment is None else {"augment": repr(augment)}), **view,
                  **({} if on_policy is None else {"on_policy": repr(on_policy)}), **start,
                  **optimizer_key(optimizer))

    def train_rows(model: nn.Module) -> list[dict[str, float]]:
        return distill(model, teacher, train, test, T=T, alpha=alpha, objective=objective,
                       epochs=epochs, lr=lr, batch_size=batch_size, seed=seed,
                       lr_schedule=lr_schedule, cached_logits=cached_logits, augment=augment,
                       teacher_view=teacher_view, view_logits=view_logits,
                       on_policy=on_policy, optimizer=optimizer, label=name,
                       progress=progress).rows

    student, rows = load_or_train(student, name, key, train_rows, legacy_key=legacy_key(key))
    return student, History(name, rows)
