"""Distillation in the one loop: :func:`distill` trains a student on an objective's terms against
a frozen teacher's logits (looked up by sample, by view, or run live), and :func:`cached_distill`
keys the result by student, teacher, data and settings."""
from __future__ import annotations

import math
from typing import Callable

import torch
from torch import nn

from ..checkpoint import load_or_train
from ..checks import check_loss_temperature
from ..data.datasets import Augment, Batch, ImageDataset, check_labelled
from ..data.fingerprint import content_fingerprint
from ..identity import legacy_key
from ..inference.predict import freeze, per_position
from ..losses.logits import SoftLoss, kd_loss
from ..losses.objectives import HintonKD, Objective, objective_key
from ..runtime import seed_everything
from .fit import run_key
from .generated_text import OnPolicy
from .loop import History, check_run, optimizer_key, train_loop
from .sparse_logits import TopKLogits
from .teacher_outputs import (check_logits_of_teacher, check_teacher_view, live_logits,
                              teacher_entry, teacher_lookup)


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
    soft_loss(T)``, or on ``objective``'s terms (:mod:`kdutils.losses.objectives`, e.g.
    ``kd.DecoupledKD()``).

    ``soft_loss`` defaults to :func:`~kdutils.losses.logits.kd_loss` (see
    :data:`~kdutils.losses.logits.SOFT_LOSSES` for others). With ``alpha=0`` the student learns from
    the teacher alone, and ``train`` may hide labels (:meth:`ImageDataset.hide_labels`).

    The teacher is put in eval mode with gradients off. Without ``augment`` its logits are
    computed once (or taken from ``cached_logits``, the output of :func:`teacher_logits` on
    ``train``, to share them between runs), then looked up by each batch's sample indices. With
    ``augment`` (e.g. :class:`~kdutils.training.regularize.RandomShift`) the student sees
    transformed images and ``teacher_view`` says what the teacher sees
    (:mod:`kdutils.training.teacher_outputs`): ``"same"`` (default: the student's view, a teacher
    pass per step, or a lookup in ``view_logits`` from
    :func:`~kdutils.training.teacher_outputs.teacher_view_logits`), ``"clean"`` (the untransformed
    image: stored logits) or ``"independent"`` (another random view: a lookup in ``view_logits``,
    computed if not given).

    ``on_policy`` (:class:`~kdutils.training.generated_text.OnPolicy`, for language models): a share
    of each batch is the student's own continuations of prompts, and the teacher runs live on every
    batch. The objective must not use the labels (``alpha=0``)."""
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
    (:func:`~kdutils.training.teacher_outputs.teacher_entry`), so a retrained or edited teacher gets
    new students. ``cached_logits`` and ``view_logits`` are checked against the teacher
    (:func:`~kdutils.training.teacher_outputs.check_logits_of_teacher`) before they are used, even
    when the student comes from the cache. ``start_from``: a model whose weights the student starts
    from instead of its seed's initialization (GKD distils a student trained first); their
    fingerprint joins the key. Logits stored as their top k
    (:class:`~kdutils.training.sparse_logits.TopKLogits`) put ``k`` in the key: such a student
    learned from another distribution than one of the full logits."""
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
                  **({"teacher_outputs": f"top-{cached_logits.k}"}
                     if isinstance(cached_logits, TopKLogits) else {}),
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
