"""A frozen teacher's outputs during distillation: which view of each image the teacher sees, and
where its logits come from (stored once and looked up by sample index, or computed live).

With a random augmentation the student sees a transformed image, and the teacher may see
(Beyer et al., 2022):

- ``"same"``: the student's own view ("consistent teaching"), the default;
- ``"clean"``: the untransformed image, whatever the student got (a "fixed teacher": its
  outputs can be computed once, as the course did before augmentation);
- ``"independent"``: another view, drawn independently ("independent noise").

For an augmentation with numbered views (:class:`~kdutils.data.datasets.ViewAugment`, e.g. the 25
shifts of ``RandomShift(2)``) the teacher's logits on every view of every sample are computed once
(:func:`teacher_view_logits`, kept in the checkpoint cache) and looked up by sample and view, so all
three cost a lookup per step instead of a teacher forward pass."""
from __future__ import annotations

from typing import Any, Callable

import torch
from torch import nn

from ..checkpoint import cached
from ..data.datasets import Augment, Batch, ImageDataset, ViewAugment, check_not_empty
from ..data.fingerprint import check_outputs_match, content_fingerprint, tag_outputs
from ..identity import code_entry
from ..inference.predict import (EVAL_BATCH, freeze, logits_of, memory_format_for, model_device,
                                 teacher_logits)
from ..runtime import torch_release
from .sparse_logits import TopKLogits

TEACHER_VIEWS = ("same", "clean", "independent")
INDEPENDENT_VIEWS_SEED = 2**31
"""Added to a run's seed for the generator of the teacher's independent views, so that its
stream differs from the one that shuffles and augments the student's batches."""
TeacherBatch = Callable[[Batch], torch.Tensor]


def teacher_entry(teacher: nn.Module) -> dict[str, Any]:
    """The teacher's part of a cache key: architecture, a fingerprint of its weights and the code
    of its classes of yours, so that a retrained or edited teacher gets new results."""
    return {"architecture": repr(teacher),
            "weights": content_fingerprint(*teacher.state_dict().values()), **code_entry(teacher)}


def check_teacher_view(teacher_view: str, augment: Augment | None,
                       cached_logits: torch.Tensor | None,
                       view_logits: torch.Tensor | None = None) -> None:
    """Refuse a ``teacher_view`` that the augmentation and stored logits cannot give."""
    if teacher_view not in TEACHER_VIEWS:
        raise ValueError(f"teacher_view must be one of {TEACHER_VIEWS}, got {teacher_view!r}")
    if augment is None and teacher_view == "independent":
        raise ValueError("teacher_view='independent' draws another augmented view for the "
                         "teacher, so it needs augment (e.g. augment=kd.RandomShift(2))")
    if teacher_view == "independent" and not isinstance(augment, ViewAugment):
        raise ValueError("teacher_view='independent' looks the teacher's logits up by view, so "
                         "augment must have numbered views (kd.RandomShift does)")
    if view_logits is not None and not isinstance(augment, ViewAugment):
        raise ValueError("view_logits are looked up by each sample's view, so augment must have "
                         "numbered views (e.g. augment=kd.RandomShift(2), the one they were "
                         "computed with)")
    if view_logits is not None and cached_logits is not None:
        raise ValueError("pass cached_logits or view_logits, not both: view_logits already hold "
                         "the untransformed images' logits (teacher_view='clean')")
    if cached_logits is not None and augment is not None and teacher_view != "clean":
        raise ValueError("cached_logits are the teacher's outputs on untransformed images, so "
                         "with augment they serve teacher_view='clean' only: pass "
                         "teacher_view='clean', or cached_logits=None (the teacher then sees "
                         "each augmented batch)")


def check_logits_of_teacher(logits: torch.Tensor | TopKLogits, teacher: nn.Module,
                            train: ImageDataset,
                            augment: ViewAugment | None = None, probe: int = 64) -> None:
    """Refuse ``logits`` that ``teacher`` did not compute: its logits on the first ``probe``
    samples of ``train`` must match theirs to float precision. ``logits`` are one row per sample
    (:func:`~kdutils.inference.predict.teacher_logits`, or its top k,
    :func:`~kdutils.training.sparse_logits.top_k_logits`) or, with ``augment``, one row per sample
    and view (:func:`teacher_view_logits`)."""
    name, remedy = (("cached_logits", "compute them with kd.teacher_logits(teacher, train)")
                    if augment is None else
                    ("view_logits", "compute them with kd.teacher_view_logits(teacher, train, "
                     "augment)"))
    check_outputs_match(logits, train, name, remedy)
    if augment is not None and (logits.dim() != 3 or logits.shape[1] != augment.views):
        raise ValueError(f"{name} must have shape (samples, {augment.views} views, classes) for "
                         f"{augment!r}, got {tuple(logits.shape)}; {remedy}")
    first = train.select(torch.arange(min(probe, len(train))), f"first {probe}")
    expected = (teacher_logits(teacher, first) if augment is None
                else _logits_per_view(teacher, first, augment))
    agrees = (logits.agrees_with(expected) if isinstance(logits, TopKLogits) else
              torch.allclose(expected, logits[:len(first)].cpu(), rtol=1e-4, atol=1e-4))
    if not agrees:
        raise ValueError(f"{name} were computed by another teacher (or an earlier state of "
                         f"this one); {remedy}")


def stored_logits_lookup(teacher: nn.Module, train: ImageDataset,
                         cached_logits: torch.Tensor | TopKLogits | None,
                         device: torch.device) -> TeacherBatch:
    """The teacher's logits on the untransformed ``train``, computed once (or ``cached_logits``,
    checked), as a lookup of each batch's rows by sample index (from a
    :class:`~kdutils.training.sparse_logits.TopKLogits`: dense rows, ``-inf`` where a token is not
    stored)."""
    logits = teacher_logits(teacher, train) if cached_logits is None else cached_logits
    check_outputs_match(logits, train, "cached_logits",
                        "compute them with kd.teacher_logits(teacher, train)")
    logits = logits.to(device)  # once, not per batch
    return lambda batch: logits[batch.index.to(device)]


def live_logits(teacher: nn.Module, student: nn.Module) -> TeacherBatch:
    """The frozen teacher's logits on each (augmented) batch, computed as the batch comes."""
    if model_device(teacher) != model_device(student):
        raise ValueError(f"with augment the teacher runs on the student's batches: move it to "
                         f"the student's device with teacher.to({str(model_device(student))!r})")

    def logits(batch: Batch) -> torch.Tensor:
        with torch.no_grad():
            return logits_of(teacher(batch.inputs))

    return logits


@torch.no_grad()
def _logits_per_view(teacher: nn.Module, data: ImageDataset, augment: ViewAugment,
                     batch_size: int = EVAL_BATCH) -> torch.Tensor:
    """``(N, views, classes)``: the frozen teacher's logits on every view of every sample."""
    freeze(teacher)
    device, memory_format = model_device(teacher), memory_format_for(teacher)
    rows = []
    for start in range(0, len(data), batch_size):
        images = data.images[start:start + batch_size]
        per_view = []
        for view in range(augment.views):
            shifted = augment.apply(images, torch.full((len(images),), view))
            inputs = data.normalize(shifted).to(device, memory_format=memory_format)
            per_view.append(logits_of(teacher(inputs)).float().cpu())
        rows.append(torch.stack(per_view, 1))
    return torch.cat(rows)


def teacher_view_logits(teacher: nn.Module, data: ImageDataset,
                        augment: ViewAugment) -> torch.Tensor:
    """The frozen ``teacher``'s logits on every view of every sample of ``data``: a float32
    tensor ``(N, augment.views, classes)`` on the CPU, tagged with ``data``'s fingerprint.

    Computed once (``views`` teacher passes over ``data``) and kept in the checkpoint cache,
    keyed by the teacher (:func:`teacher_entry`), the data's fingerprint, the augmentation and
    PyTorch's release. For MNIST's 60,000 images and 25 shifts it is 60 MB.
    """
    if not isinstance(augment, ViewAugment):
        raise ValueError(f"augment must have numbered views (kd.RandomShift has), got "
                         f"{augment!r}")
    check_not_empty(data, "data")
    freeze(teacher)
    key = {"teacher": teacher_entry(teacher), "data": data.fingerprint, "augment": repr(augment),
           "torch": torch_release()}
    views, n = augment.views, len(data)

    def fits(value: dict[str, Any]) -> str | None:
        logits = value.get("logits")
        if not isinstance(logits, torch.Tensor) or logits.dim() != 3 \
                or logits.shape[:2] != (n, views) or not torch.isfinite(logits).all():
            return f"stored view logits are not a finite ({n}, {views}, classes) tensor"
        return None

    value = cached("teacher-views", key,
                   lambda: {"logits": _logits_per_view(teacher, data, augment)}, check=fits)
    return tag_outputs(value["logits"], data)


def view_lookup(view_logits: torch.Tensor, train: ImageDataset, augment: ViewAugment,
                teacher_view: str, generator: torch.Generator,
                device: torch.device) -> TeacherBatch:
    """Each batch's teacher logits from ``view_logits`` (:func:`teacher_view_logits`): at the
    student's view (``"same"``), the identity view (``"clean"``, the untransformed image) or a
    view drawn from ``generator`` (``"independent"``)."""
    table = view_logits.to(device)  # once, not per batch

    def logits(batch: Batch) -> torch.Tensor:
        if teacher_view == "same":
            chosen = batch.view
        elif teacher_view == "clean":
            chosen = torch.full_like(batch.view, augment.identity_view)
        else:
            chosen = augment.draw(len(batch.view), generator)
        return table[batch.index.to(device), chosen.to(device)]

    return logits


def teacher_lookup(teacher: nn.Module, student: nn.Module, train: ImageDataset, *,
                   augment: Augment | None, teacher_view: str,
                   cached_logits: torch.Tensor | None, view_logits: torch.Tensor | None,
                   seed: int) -> TeacherBatch:
    """How :func:`~kdutils.training.distill.distill` gets each batch's teacher logits (arguments
    checked by :func:`check_teacher_view`): from ``view_logits`` when given, from the logits of
    the untransformed images when the teacher sees those, live on the student's batch for
    ``"same"``, and from :func:`teacher_view_logits` for ``"independent"``."""
    device = model_device(student)
    if view_logits is None and teacher_view == "independent":
        view_logits = teacher_view_logits(teacher, train, augment)
    if view_logits is not None:
        check_outputs_match(view_logits, train, "view_logits", "compute them with "
                            "kd.teacher_view_logits(teacher, train, augment)")
        generator = torch.Generator().manual_seed(INDEPENDENT_VIEWS_SEED + seed)
        return view_lookup(view_logits, train, augment, teacher_view, generator, device)
    if augment is None or teacher_view == "clean":
        return stored_logits_lookup(teacher, train, cached_logits, device)
    return live_logits(teacher, student)
