"""Any image-classification data as an :class:`~kdutils.data.datasets.ImageDataset`: from images and
labels tensors, or from a torchvision dataset, with normalization statistics and a fingerprint.

Nothing is guessed: channels-last arrays, fractional labels, images of more than 8 bits or of
mixed channel counts are refused with the fix; palette and other colour modes are converted to
the colours they show."""
from __future__ import annotations

import math
from numbers import Integral, Real
from typing import Any, Sequence

import numpy as np
import torch
from PIL import Image
from torchvision.transforms.functional import pil_to_tensor

from .datasets import ImageDataset, channel_stats

CHANNEL_COUNTS = (1, 3, 4)  # grayscale, RGB, RGBA
PIL_CONVERSIONS = {"1": "L", "P": "RGB", "PA": "RGBA", "CMYK": "RGB", "YCbCr": "RGB",
                   "LAB": "RGB", "HSV": "RGB"}
"""PIL modes read as the colours they show (a palette image as its RGB colours, not indices)."""
PIL_MODES = ("L", "LA", "RGB", "RGBA")
Statistics = tuple[tuple[float, ...], tuple[float, ...]]


def _channels_last(shape: tuple[int, ...]) -> bool:
    """Whether ``(..., A, B, C)`` image dimensions look like (H, W, C) rather than (C, H, W)."""
    return shape[-1] in CHANNEL_COUNTS and shape[-3] not in CHANNEL_COUNTS


def _checked_images(images: torch.Tensor | np.ndarray) -> torch.Tensor:
    """uint8 ``(N, C, H, W)`` images from uint8 ``(N, C, H, W)`` or ``(N, H, W)``."""
    if isinstance(images, np.ndarray):
        images = torch.from_numpy(images)
    if not isinstance(images, torch.Tensor) or images.dtype != torch.uint8 \
            or images.dim() not in (3, 4):
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError(f"images must be a uint8 tensor (N, C, H, W) or (N, H, W) with values "
                         f"0-255, got {shape}{getattr(images, 'dtype', '')}; for floats in [0, 1] "
                         "pass (images * 255).round().to(torch.uint8)")
    if images.dim() == 4 and _channels_last(tuple(images.shape)):
        raise ValueError(f"images of shape {tuple(images.shape)} look channels-last (N, H, W, C), "
                         "as numpy, PIL and CIFAR10.data store them; kdutils takes (N, C, H, W): "
                         "pass images.permute(0, 3, 1, 2) (torch.from_numpy(a).permute(0, 3, 1, "
                         "2) for a numpy array)")
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


def _statistics(stats: ImageDataset | Sequence[Sequence[float]] | None,
                images: torch.Tensor) -> Statistics:
    """Per-channel ``(mean, std)``: the training split's, a given pair, or the images' own."""
    if stats is None:
        mean, std = channel_stats(images)
    elif isinstance(stats, ImageDataset):
        mean, std = stats.mean, stats.std
    elif isinstance(stats, Sequence) and len(stats) == 2:
        mean, std = (tuple(float(v) for v in values) for values in stats)
    else:
        raise ValueError(f"stats must be the training split (an ImageDataset) or a (mean, std) "
                         f"pair of per-channel values on the [0, 1] scale, got {stats!r}")
    if len(mean) != images.shape[1] or len(std) != images.shape[1]:
        raise ValueError(f"stats has {len(mean)} channels but images have {images.shape[1]}")
    if not all(math.isfinite(s) for s in std):
        raise ValueError(f"the images' standard deviation cannot be estimated (std={std}): each "
                         "channel has a single pixel value; pass stats= from the training split")
    if min(std) <= 0:
        raise ValueError(f"a channel of the images has a standard deviation of 0 (std={std}), so "
                         "normalizing would divide by 0; pass stats= from data that varies")
    return mean, std


def from_tensors(images: torch.Tensor | np.ndarray, labels: torch.Tensor | Sequence[int], *,
                 name: str, stats: ImageDataset | Sequence[Sequence[float]] | None = None,
                 source: str | None = None) -> ImageDataset:
    """An :class:`~kdutils.data.datasets.ImageDataset` of uint8 ``images`` and integer ``labels``.

    Normalized with ``stats``: the training split (pass it when making the test split) or a
    ``(mean, std)`` pair of per-channel values on the [0, 1] scale; else with the statistics of
    ``images`` themselves. The dataset keeps its own copy of the tensors, on the CPU.
    """
    images = _checked_images(images)
    labels = _checked_labels(labels, len(images))
    if not len(images):
        raise ValueError("images is empty: a dataset needs at least one sample")
    mean, std = _statistics(stats, images)
    return ImageDataset(images, labels, mean, std, name, source or name)


def _pil_as_uint8(image: Image.Image, position: int) -> torch.Tensor:
    """A PIL image as uint8 ``(C, H, W)`` of the colours it shows."""
    mode = image.mode
    if mode == "P" and "transparency" in image.info:
        mode = "PA"
    if mode in PIL_CONVERSIONS:
        image = image.convert(PIL_CONVERSIONS[mode])
    if image.mode not in PIL_MODES:
        raise ValueError(f"sample {position} is a PIL image of mode {image.mode!r} (more than 8 "
                         f"bits per value); kdutils takes 8-bit images: convert it to 'L' or "
                         "'RGB' in the dataset's transform, scaling its values to 0-255")
    return pil_to_tensor(image)


def _as_uint8(image: Any, position: int) -> torch.Tensor:
    """One sample's image as uint8 ``(C, H, W)``: from a PIL image or a uint8 tensor or array."""
    if isinstance(image, Image.Image):
        return _pil_as_uint8(image, position)
    if isinstance(image, np.ndarray):
        image = torch.from_numpy(image)
    if isinstance(image, torch.Tensor) and image.dtype == torch.uint8 and image.dim() in (2, 3):
        if image.dim() == 3 and _channels_last(tuple(image.shape)):
            raise ValueError(f"sample {position} has shape {tuple(image.shape)}, channels-last "
                             "(H, W, C); kdutils takes (C, H, W): give PIL images, or add "
                             "transforms.PILToTensor() to the dataset")
        return image if image.dim() == 3 else image.unsqueeze(0)
    raise ValueError(f"sample {position} is a {type(image).__name__}"
                     f"{getattr(image, 'dtype', '')}, not a PIL image or a uint8 tensor: create "
                     "the dataset without a transform (or with transforms.PILToTensor())")


def _class_number(label: Any, position: int) -> int:
    """A sample's label as a class number; a fractional or non-numeric label is refused."""
    if isinstance(label, (torch.Tensor, np.ndarray)) and label.ndim == 0:
        label = label.item()
    if isinstance(label, Integral) and not isinstance(label, bool):
        return int(label)
    if isinstance(label, Real) and not isinstance(label, bool) and float(label).is_integer():
        return int(label)
    raise ValueError(f"sample {position} has label {label!r}, not a class number: labels must "
                     "be whole numbers 0, 1, 2, ... (map other targets to classes in the "
                     "dataset's target_transform)")


def _check_one_shape(kind: str, images: list[torch.Tensor]) -> None:
    """Refuse images of different channel counts or sizes, naming a sample of each and the fix."""
    first = tuple(images[0].shape)
    for position, image in enumerate(images):
        shape = tuple(image.shape)
        if shape == first:
            continue
        if shape[1:] == first[1:]:
            raise ValueError(f"{kind}'s sample 0 has {first[0]} channel(s) and sample {position} "
                             f"{shape[0]}: convert every image to one mode in the dataset's "
                             "transform, e.g. transforms.Grayscale(num_output_channels=3) or "
                             "transforms.Lambda(lambda im: im.convert('RGB'))")
        raise ValueError(f"{kind}'s images differ in size (sample 0 is {first}, sample "
                         f"{position} {shape}): resize them in the dataset's transform (e.g. "
                         "transforms.Resize)")


def from_torchvision(dataset: Any, *, stats: ImageDataset | Sequence[Sequence[float]] | None = None,
                     name: str | None = None) -> ImageDataset:
    """Read every ``(image, label)`` of a torchvision-style dataset once into an ImageDataset.

    Images must be PIL images or uint8 tensors of one size (no ``ToTensor`` or normalizing
    transform: kdutils normalizes on the fly). ``stats`` as in :func:`from_tensors`. For
    example, with Fashion-MNIST::

        train = kd.from_torchvision(FashionMNIST("data", train=True, download=True))
        test = kd.from_torchvision(FashionMNIST("data", train=False, download=True), stats=train)
    """
    kind = type(dataset).__name__
    samples = [(_as_uint8(image, i), _class_number(label, i))
               for i, (image, label) in enumerate(dataset)]
    if not samples:
        raise ValueError(f"{kind} is empty: a dataset needs at least one sample")
    _check_one_shape(kind, [image for image, _ in samples])
    name = name or f"{kind} ({len(samples):,})"
    root = getattr(dataset, "root", None)
    source = f"{name}, torchvision {kind}" + (f" in {root}" if root is not None else "")
    images = torch.stack([image for image, _ in samples])
    return from_tensors(images, [label for _, label in samples], name=name, stats=stats,
                        source=source)
