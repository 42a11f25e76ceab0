"""Any image-classification data as an :class:`~kdutils.data.ImageDataset`: from images and
labels tensors, or from a torchvision dataset, with normalization statistics and a fingerprint."""
from __future__ import annotations

from typing import Any, Sequence

import torch
from PIL import Image
from torchvision.transforms.functional import pil_to_tensor

from .data import ImageDataset, channel_stats


def _checked_images(images: torch.Tensor) -> torch.Tensor:
    """uint8 ``(N, C, H, W)`` images from uint8 ``(N, C, H, W)`` or ``(N, H, W)``."""
    if not isinstance(images, torch.Tensor) or images.dtype != torch.uint8 \
            or images.dim() not in (3, 4):
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError(f"images must be a uint8 tensor (N, C, H, W) or (N, H, W) with values "
                         f"0-255, got {shape}{getattr(images, 'dtype', '')}; for floats in [0, 1] "
                         "pass (images * 255).round().to(torch.uint8)")
    images = images.unsqueeze(1) if images.dim() == 3 else images
    return images.cpu().clone(memory_format=torch.contiguous_format)  # the dataset's own copy


def _checked_labels(labels: torch.Tensor | Sequence[int], count: int) -> torch.Tensor:
    """int64 ``(N,)`` labels, one per image, none negative."""
    labels = torch.as_tensor(labels)
    if labels.dim() != 1 or len(labels) != count or labels.is_floating_point():
        raise ValueError(f"labels must be {count} integers, one per image, got shape "
                         f"{tuple(labels.shape)} of {labels.dtype}")
    if count and labels.min() < 0:
        raise ValueError(f"labels must be class numbers >= 0, got {int(labels.min())}")
    return labels.cpu().long().clone()


def from_tensors(images: torch.Tensor, labels: torch.Tensor | Sequence[int], *, name: str,
                 stats: ImageDataset | None = None, source: str | None = None) -> ImageDataset:
    """An :class:`~kdutils.data.ImageDataset` of uint8 ``images`` and integer ``labels``.

    Normalized with ``stats``' mean and std (pass the training split when making the test
    split), else with the statistics of ``images`` themselves. The dataset keeps its own copy
    of the tensors, on the CPU.
    """
    images = _checked_images(images)
    labels = _checked_labels(labels, len(images))
    if not len(images):
        raise ValueError("images is empty: a dataset needs at least one sample")
    mean, std = (stats.mean, stats.std) if stats is not None else channel_stats(images)
    if len(mean) != images.shape[1]:
        raise ValueError(f"stats has {len(mean)} channels but images have {images.shape[1]}")
    if min(std) == 0:
        raise ValueError(f"a channel of the images has a standard deviation of 0 (std={std}), so "
                         "normalizing would divide by 0; pass stats= from data that varies")
    return ImageDataset(images, labels, mean, std, name, source or name)


def _as_uint8(image: Any, position: int) -> torch.Tensor:
    """One sample's image as uint8 ``(C, H, W)``: from a PIL image or a uint8 tensor."""
    if isinstance(image, Image.Image):
        return pil_to_tensor(image)
    if isinstance(image, torch.Tensor) and image.dtype == torch.uint8:
        return image if image.dim() == 3 else image.unsqueeze(0)
    raise ValueError(f"sample {position} is a {type(image).__name__}"
                     f"{getattr(image, 'dtype', '')}, not a PIL image or a uint8 tensor: create "
                     "the dataset without a transform (or with transforms.PILToTensor())")


def from_torchvision(dataset: Any, *, stats: ImageDataset | None = None,
                     name: str | None = None) -> ImageDataset:
    """Read every ``(image, label)`` of a torchvision-style dataset once into an ImageDataset.

    Images must be PIL images or uint8 tensors of one size (no ``ToTensor`` or normalizing
    transform: kdutils normalizes on the fly). ``stats`` as in :func:`from_tensors`. For
    example, with Fashion-MNIST::

        train = kd.from_torchvision(FashionMNIST("data", train=True, download=True))
        test = kd.from_torchvision(FashionMNIST("data", train=False, download=True), stats=train)
    """
    kind = type(dataset).__name__
    samples = [(_as_uint8(image, i), int(label)) for i, (image, label) in enumerate(dataset)]
    if not samples:
        raise ValueError(f"{kind} is empty: a dataset needs at least one sample")
    sizes = {tuple(image.shape) for image, _ in samples}
    if len(sizes) > 1:
        raise ValueError(f"{kind}'s images differ in size ({sorted(sizes)[:3]} ...): resize them "
                         "in the dataset's transform (e.g. transforms.Resize)")
    name = name or f"{kind} ({len(samples):,})"
    root = getattr(dataset, "root", None)
    source = f"{name}, torchvision {kind}" + (f" in {root}" if root is not None else "")
    images = torch.stack([image for image, _ in samples])
    return from_tensors(images, [label for _, label in samples], name=name, stats=stats,
                        source=source)
