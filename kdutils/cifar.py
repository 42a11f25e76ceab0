"""CIFAR-10: torchvision's original release, or an image-folder JPEG copy (decoded once, cached)."""
from __future__ import annotations

import functools
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torchvision import datasets

from .checkpoint import cached
from .data import DatasetNotFoundError, ImageDataset, channel_stats, download_or_explain
from .runtime import DATA_ENV, data_dir, display_path

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
                   "truck")
ORIGINAL_FOLDER = "cifar-10-batches-py"
ARCHIVE = "cifar-10-python.tar.gz"
JPEG_FOLDER = "cifar10-jpeg"
Split = tuple[torch.Tensor, torch.Tensor, str, Path]  # images, labels, kind of copy, folder


def _split_name(train: bool) -> str:
    return "train" if train else "test"


def _missing_message(root: Path, cause: Exception) -> str:
    return (f"CIFAR-10 is not in {root} and could not be downloaded ({type(cause).__name__}). "
            f"Either put the original release there ({root / ORIGINAL_FOLDER}/ or {ARCHIVE}, "
            f"what torchvision.datasets.CIFAR10 downloads), or an image-folder copy as "
            f"{root / JPEG_FOLDER}/{{train,test}}/<class>/*.jpg with the ten class folders "
            f"{', '.join(CIFAR10_CLASSES)}. Or point {DATA_ENV} at a folder that has one of "
            "them. See data/README.md.")


def _download(root: Path) -> None:
    """Download (or unpack a user-provided archive) in a temporary folder, then move into place.

    A failed or interrupted download leaves ``root`` as it was.
    """
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root, prefix=".cifar10-download-") as tmp:
        if (root / ARCHIVE).is_file():
            shutil.copy(root / ARCHIVE, Path(tmp) / ARCHIVE)
        download_or_explain(lambda: datasets.CIFAR10(tmp, train=True, download=True),
                            lambda error: _missing_message(root, error))
        os.replace(Path(tmp) / ORIGINAL_FOLDER, root / ORIGINAL_FOLDER)


def _original_split(root: Path, train: bool) -> Split:
    split = datasets.CIFAR10(root, train=train, download=False)
    images = torch.from_numpy(split.data).permute(0, 3, 1, 2).contiguous()
    return images, torch.tensor(split.targets), "original", root / ORIGINAL_FOLDER


def _jpeg_files(folder: Path) -> list[tuple[Path, int]]:
    """``(file, label)`` pairs, labels from the sorted class folders (CIFAR-10's own order)."""
    classes = tuple(sorted(d.name for d in folder.iterdir() if d.is_dir()))
    if classes != CIFAR10_CLASSES:
        raise ValueError(f"{folder} must hold one folder per CIFAR-10 class "
                         f"{CIFAR10_CLASSES}, found {classes}")
    return [(file, label) for label, name in enumerate(classes)
            for file in sorted((folder / name).glob("*.jpg"))]


def _decode(files: list[tuple[Path, int]]) -> dict[str, torch.Tensor]:
    """Decode every JPEG (Pillow, RGB) into one uint8 ``(N, 3, 32, 32)`` tensor."""
    images = torch.empty(len(files), 3, 32, 32, dtype=torch.uint8)
    for i, (file, _) in enumerate(files):
        with Image.open(file) as image:
            pixels = np.array(image.convert("RGB"))
        if pixels.shape != (32, 32, 3):
            raise ValueError(f"{file} is {pixels.shape[1]}x{pixels.shape[0]}; CIFAR-10 images "
                             "are 32x32")
        images[i] = torch.from_numpy(pixels).permute(2, 0, 1)
    return {"images": images, "labels": torch.tensor([label for _, label in files])}


def _jpeg_split(root: Path, train: bool) -> Split:
    """Decode the JPEG folder once; later calls read the cached tensors (keyed by the files)."""
    folder = root / JPEG_FOLDER / _split_name(train)
    files = _jpeg_files(folder)
    if not files:
        empty = FileNotFoundError(f"no *.jpg in {folder}")
        raise DatasetNotFoundError(_missing_message(root, empty))
    stats = [file.stat() for file, _ in files]
    key = {"folder": str(folder), "files": len(files), "bytes": sum(s.st_size for s in stats),
           "newest": max(s.st_mtime_ns for s in stats)}
    tensors = cached(f"cifar10-jpeg-{_split_name(train)}", key, lambda: _decode(files))
    return tensors["images"], tensors["labels"], "JPEG copy", folder


@functools.lru_cache(maxsize=None)
def _cifar_split(root: Path, train: bool) -> Split:
    if (root / ORIGINAL_FOLDER).is_dir():
        return _original_split(root, train)
    if (root / JPEG_FOLDER / _split_name(train)).is_dir():
        return _jpeg_split(root, train)
    _download(root)
    return _original_split(root, train)


@functools.lru_cache(maxsize=None)
def _cifar_stats(root: Path) -> tuple[tuple[float, ...], tuple[float, ...]]:
    return channel_stats(_cifar_split(root, True)[0])


def load_cifar10(train: bool = True, root: str | Path | None = None) -> ImageDataset:
    """CIFAR-10 under ``root`` (default: :func:`~kdutils.runtime.data_dir`), as uint8 tensors.

    Reads torchvision's original release if present, else the image-folder JPEG copy
    ``cifar10-jpeg/{train,test}/<class>/*.jpg`` (decoded once, then cached), else downloads the
    original. Normalized with the training split's own per-channel mean and std. The dataset's
    ``name`` and ``source`` say which copy was read: accuracies on the JPEG copy run a little
    lower. Raises :class:`~kdutils.data.DatasetNotFoundError` when no copy can be found.
    """
    root = Path(root).expanduser().resolve() if root is not None else data_dir()
    images, labels, kind, folder = _cifar_split(root, train)
    mean, std = _cifar_stats(root)
    name = f"CIFAR-10 {_split_name(train)} ({len(labels):,}, {kind})"
    source = f"{name}, read from {display_path(folder)}"
    return ImageDataset(images, labels, mean, std, name, source)
