"""Datasets as in-memory tensors: loaded once, normalized on the fly, shuffled by index."""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable, Iterator, NamedTuple, Protocol, runtime_checkable

import torch

from ..checks import check_count
from .fingerprint import content_fingerprint, derived_fingerprint, positions

UNLABELLED = -1  # the label of a sample whose label the student must not see


def random_positions(length: int, size: int, seed: int) -> torch.Tensor:
    """``size`` of ``length`` positions drawn at random under ``seed``, in increasing order: the
    samples a quick-mode subset keeps."""
    if not 0 < size <= length:
        raise ValueError(f"size must be in 1..{length}, got {size}")
    keep = torch.randperm(length, generator=torch.Generator().manual_seed(seed))[:size]
    return keep.sort().values


@dataclass(frozen=True)
class ImageDataset:
    """Images as uint8 ``(N, C, H, W)``, labels as int64 ``(N,)``, with per-channel statistics.

    ``mean`` and ``std`` are per-channel values on the [0, 1] scale, computed from the training
    split, and used to normalize batches on the fly. ``name`` and ``source`` are for people
    (what the data is, where it was read from); caches use :attr:`fingerprint`. Treat the
    tensors as read-only: the fingerprint is computed once, so an in-place edit would leave it
    stale (make a new dataset instead).
    """

    images: torch.Tensor
    labels: torch.Tensor
    mean: tuple[float, ...]
    std: tuple[float, ...]
    name: str
    source: str

    @functools.cached_property
    def fingerprint(self) -> str:
        """sha256 of the images, labels and statistics: the identity of the data, in its order.

        Computed once per dataset (about 0.1 s for CIFAR-10's training split); a dataset made by
        :meth:`select` or :meth:`hide_labels` derives it from its parent's and the positions.
        """
        statistics = f"mean={self.mean!r} std={self.std!r}"
        return content_fingerprint(self.images, self.labels, extra=statistics)

    def _derived(self, images: torch.Tensor, labels: torch.Tensor, described: str,
                 fingerprint: str) -> "ImageDataset":
        """A dataset made from this one, whose fingerprint is ``fingerprint`` (not re-hashed)."""
        derived = ImageDataset(images, labels, self.mean, self.std, self.name + described,
                               self.source + described)
        derived.__dict__["fingerprint"] = fingerprint  # fills the cached_property
        return derived

    def __len__(self) -> int:
        return len(self.labels)

    def normalized(self, index: torch.Tensor | slice = slice(None)) -> torch.Tensor:
        """Float images ``(x / 255 - mean) / std`` for the given sample indices."""
        return self.normalize(self.images[index])

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """Float images ``(x / 255 - mean) / std`` from uint8 ``images`` of this dataset's shape."""
        shape = (1, -1, 1, 1)
        mean = torch.tensor(self.mean, device=images.device).view(shape) * 255
        std = torch.tensor(self.std, device=images.device).view(shape) * 255
        return images.float().sub_(mean).div_(std)

    def subset(self, size: int, seed: int = 0) -> "ImageDataset":
        """A random subset of ``size`` samples (same statistics), for quick mode."""
        return self.select(random_positions(len(self), size, seed),
                           f" (random subset of {size}, seed {seed})")

    def without_classes(self, *classes: int) -> "ImageDataset":
        """The samples whose label is not in ``classes`` (same statistics), e.g. MNIST minus 3s."""
        present = set(self.labels.unique().tolist())
        if not classes or not set(classes) <= present:
            raise ValueError(f"classes must be labels present in the data ({sorted(present)}), "
                             f"got {classes}")
        keep = torch.nonzero(~torch.isin(self.labels, torch.tensor(classes))).squeeze(1)
        return self.select(keep, f" without class {', '.join(map(str, classes))}")

    def select(self, index: torch.Tensor, described: str) -> "ImageDataset":
        """The samples at positions ``index`` (same statistics); ``described`` extends the names.

        Its fingerprint derives from this one's and the positions, as that of
        :func:`~kdutils.data.fingerprint.select_rows` on outputs of this dataset does.
        """
        picked = positions(index, len(self))
        return self._derived(self.images[picked], self.labels[picked], described,
                             derived_fingerprint(self.fingerprint, "select", picked))

    def hide_labels(self, index: torch.Tensor) -> "ImageDataset":
        """The same samples with the labels at positions ``index`` replaced by :data:`UNLABELLED`.

        For semi-supervised set-ups: only soft-label distillation can use such samples, and
        anything that needs their labels fails loudly instead of reading them.
        """
        picked = positions(index, len(self))
        labels = self.labels.clone()
        labels[picked] = UNLABELLED
        described = f" (labels of {int((labels == UNLABELLED).sum()):,} hidden)"
        return self._derived(self.images, labels, described,
                             derived_fingerprint(self.fingerprint, "hide_labels", picked))

    @property
    def labelled(self) -> torch.Tensor:
        """Boolean mask of the samples whose label is known (not :data:`UNLABELLED`)."""
        return self.labels != UNLABELLED

    @property
    def samples(self) -> torch.Tensor:
        """The stored inputs (the uint8 images), as every dataset of the loop names them."""
        return self.images


def check_labelled(data: ImageDataset, name: str, remedy: str) -> None:
    """Raise ``ValueError`` if some labels of ``data`` are hidden; ``remedy`` says what to do."""
    hidden = int((~data.labelled).sum())
    if hidden:
        raise ValueError(f"{name} has {hidden:,} samples with hidden labels; {remedy}")


def check_not_empty(data: ImageDataset, name: str) -> None:
    """Raise ``ValueError`` if ``data`` has no samples."""
    if len(data) == 0:
        raise ValueError(f"{name} is empty (0 samples); check the selection or subset that "
                         "made it")


class Batch(NamedTuple):
    """A mini-batch: the samples' positions in the dataset, the normalized inputs, the labels,
    and, when an augmentation with numbered views made it (:class:`ViewAugment`), each sample's
    view number."""

    index: torch.Tensor
    inputs: torch.Tensor
    labels: torch.Tensor
    view: torch.Tensor | None = None

    def to(self, device: torch.device,
           memory_format: torch.memory_format = torch.contiguous_format) -> "Batch":
        """The same batch with inputs and labels on ``device`` (indices and views stay on the
        CPU)."""
        return Batch(self.index, self.inputs.to(device, memory_format=memory_format),
                     self.labels.to(device), self.view)


Augment = Callable[[torch.Tensor, torch.Generator | None], torch.Tensor]


@runtime_checkable
class ViewAugment(Protocol):
    """An augmentation with a finite set of numbered views (e.g.
    :class:`~kdutils.training.regularize.RandomShift`'s 25 shifts), so that a teacher's outputs can
    be stored per view and looked up by the view each sample got."""

    @property
    def views(self) -> int: ...

    @property
    def identity_view(self) -> int: ...

    def draw(self, n: int, generator: torch.Generator | None = None,
             device: torch.device | str = "cpu") -> torch.Tensor: ...

    def apply(self, images: torch.Tensor, views: torch.Tensor) -> torch.Tensor: ...


CHUNK_SAMPLES = 8192
CHUNK_BYTES = 128 * 2**20


def chunk_samples(data: ImageDataset, batch_size: int, chunk_size: int = CHUNK_SAMPLES,
                  chunk_bytes: int = CHUNK_BYTES) -> int:
    """How many samples to normalize at a time: at most ``chunk_size``, and no more than fit
    in ``chunk_bytes`` as float32 (large images), rounded down to whole batches (at least one)."""
    sample_bytes = 4 * max(data.samples[0].numel(), 1) if len(data) else 4
    samples = min(chunk_size, max(chunk_bytes // sample_bytes, 1))
    return max(samples // batch_size, 1) * batch_size


def iterate_batches(data: ImageDataset, batch_size: int, *, shuffle: bool = False,
                    generator: torch.Generator | None = None, augment: Augment | None = None,
                    chunk_size: int = CHUNK_SAMPLES) -> Iterator[Batch]:
    """Yield mini-batches of ``data``; with ``shuffle``, in the order of one random permutation.

    Samples are gathered, augmented (``augment(uint8 images, generator)``, e.g.
    :class:`~kdutils.training.regularize.RandomShift`; a :class:`ViewAugment` also records each
    sample's view in :attr:`Batch.view`) and normalized a chunk at a time (see
    :func:`chunk_samples`: at most ``chunk_size`` samples and :data:`CHUNK_BYTES` of floats), so
    that a batch is a slice (a few vectorized operations per chunk instead of per batch, bounded
    memory)."""
    check_count(batch_size, "batch_size")
    order = (torch.randperm(len(data), generator=generator, device="cpu") if shuffle
             else torch.arange(len(data), device="cpu"))  # positions live on the CPU
    chunk_size = chunk_samples(data, batch_size, chunk_size)
    for chunk_start in range(0, len(data), chunk_size):
        chunk = order[chunk_start:chunk_start + chunk_size]
        images = data.samples.index_select(0, chunk)  # row copies: 13x faster than [chunk]
        views = None
        if isinstance(augment, ViewAugment):
            views = augment.draw(len(chunk), generator)
            images = augment.apply(images, views)
        elif augment is not None:
            images = augment(images, generator)
        inputs, labels = data.normalize(images), data.labels.index_select(0, chunk)
        for start in range(0, len(chunk), batch_size):
            end = start + batch_size
            yield Batch(chunk[start:end], inputs[start:end], labels[start:end],
                        None if views is None else views[start:end])


def channel_stats(images: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and (sample) std of uint8 images ``(N, C, H, W)``, on the [0, 1] scale.

    Computed exactly from each channel's histogram of the 256 pixel values, without a float copy.
    """
    values = torch.arange(256, dtype=torch.float64) / 255
    means, stds = [], []
    for channel in range(images.shape[1]):
        counts = torch.bincount(images[:, channel].flatten(), minlength=256).double()
        n = counts.sum()
        mean = (counts * values).sum() / n
        means.append(mean.item())
        stds.append(((counts * (values - mean) ** 2).sum() / (n - 1)).sqrt().item())
    return tuple(means), tuple(stds)
