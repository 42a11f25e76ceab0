"""CIFAR-10: torchvision's original release, or an image-folder JPEG copy (decoded once, cached)."""
from __future__ import annotations

import hashlib
import os
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torchvision import datasets

from ..checkpoint import cached, local_secret
from ..runtime import DATA_ENV, display_path
from .datasets import ImageDataset, channel_stats
from .sources import (CorruptDatasetError, DatasetNotFoundError, download_staged, loaded_once,
                      resolve_root)

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
    archive = root / ARCHIVE
    download_staged(root, "cifar10", lambda staging: datasets.CIFAR10(staging, train=True,
                                                                      download=True),
                    lambda error: _missing_message(root, error),
                    lambda staging: os.replace(staging / ORIGINAL_FOLDER, root / ORIGINAL_FOLDER),
                    [(archive, ARCHIVE)] if archive.is_file() else [])


def _missing_batches(folder: Path) -> list[str]:
    """The files of torchvision's original release that ``folder`` lacks."""
    needed = [name for name, _ in datasets.CIFAR10.train_list + datasets.CIFAR10.test_list]
    needed.append(datasets.CIFAR10.meta["filename"])
    return [name for name in needed if not (folder / name).is_file()]


def _report_incomplete(folder: Path, missing: list[str], jpeg_copy: bool) -> None:
    """Warn that the incomplete ``folder`` is ignored for the JPEG copy; raise if there is none."""
    problem = f"{folder} is incomplete: it lacks {', '.join(missing)}"
    if not jpeg_copy:
        raise CorruptDatasetError(
            f"{problem}. Put the missing files there, or delete the folder so that {ARCHIVE} is "
            "unpacked or downloaded again; see data/README.md.")
    warnings.warn(f"{problem}, so it is ignored and the JPEG copy is read instead. Complete it "
                  "or delete it; see data/README.md.")


def _original_split(root: Path, train: bool) -> Split:
    try:
        split = datasets.CIFAR10(root, train=train, download=False)
    except RuntimeError as error:  # torchvision's "Dataset not found or corrupted."
        raise CorruptDatasetError(
            f"{root / ORIGINAL_FOLDER} holds every CIFAR-10 batch file, but torchvision rejects "
            f"them ({error}): one is corrupted. Delete the folder so that {ARCHIVE} is unpacked "
            "or downloaded again; see data/README.md.") from error
    images = torch.from_numpy(split.data).permute(0, 3, 1, 2).contiguous()
    return images, torch.tensor(split.targets), "original", root / ORIGINAL_FOLDER


def _jpeg_files(folder: Path) -> list[tuple[Path, int]]:
    """``(file, label)`` pairs, labels from the sorted class folders (CIFAR-10's own order)."""
    classes = tuple(sorted(d.name for d in folder.iterdir() if d.is_dir()))
    if classes != CIFAR10_CLASSES:
        raise CorruptDatasetError(f"{folder} must hold one folder per CIFAR-10 class "
                         f"{CIFAR10_CLASSES}, found {classes}")
    return [(file, label) for label, name in enumerate(classes)
            for file in sorted((folder / name).glob("*.jpg"))]


def _check_no_empty_class(folder: Path, files: list[tuple[Path, int]]) -> None:
    """Raise if some class folder of ``folder`` holds no JPEG."""
    labels = {label for _, label in files}
    empty = [str(folder / name) for label, name in enumerate(CIFAR10_CLASSES)
             if label not in labels]
    if empty:
        raise CorruptDatasetError(f"no *.jpg in {', '.join(empty)}: every class folder needs its "
                                  "images. Copy them in again; see data/README.md.")


def _decode_one(file: Path) -> np.ndarray:
    """One JPEG as uint8 ``(32, 32, 3)`` RGB pixels (Pillow)."""
    try:
        with Image.open(file) as image:
            pixels = np.array(image.convert("RGB"))
    except OSError as error:  # truncated or not an image
        raise CorruptDatasetError(f"{file} cannot be decoded ({error}). Replace it with an "
                                  "intact copy; see data/README.md.") from error
    if pixels.shape != (32, 32, 3):
        raise CorruptDatasetError(f"{file} is {pixels.shape[1]}x{pixels.shape[0]}; CIFAR-10 "
                                  "images are 32x32")
    return pixels


def _decode(files: list[tuple[Path, int]]) -> dict[str, torch.Tensor]:
    """Decode every JPEG into one uint8 ``(N, 3, 32, 32)`` tensor."""
    images = torch.empty(len(files), 3, 32, 32, dtype=torch.uint8)
    for i, (file, _) in enumerate(files):
        images[i] = torch.from_numpy(_decode_one(file)).permute(2, 0, 1)
    return {"images": images, "labels": torch.tensor([label for _, label in files])}


def _decoded_problem(stored: dict[str, torch.Tensor], count: int) -> str | None:
    """What is wrong with cached decoded images for ``count`` files, or None."""
    images, labels = stored.get("images"), stored.get("labels")
    if not isinstance(images, torch.Tensor) or images.dtype != torch.uint8 \
            or tuple(images.shape) != (count, 3, 32, 32):
        return f"it does not hold {count} decoded 3x32x32 uint8 images"
    if not isinstance(labels, torch.Tensor) or tuple(labels.shape) != (count,) \
            or labels.is_floating_point() or not ((labels >= 0) & (labels < 10)).all():
        return f"it does not hold {count} CIFAR-10 labels"
    return None


def _files_digest(folder: Path, files: list[tuple[Path, int]]) -> str:
    """sha256 over each file's path relative to ``folder`` (``<class>/<name>``, so its label),
    size and modification time, in the files' sorted order."""
    digest = hashlib.sha256()
    for file, _ in files:
        stat = file.stat()
        digest.update(f"{file.relative_to(folder).as_posix()}\0{stat.st_size}\0"
                      f"{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def _jpeg_split(root: Path, train: bool) -> Split:
    """Decode the JPEG folder once; later calls read the cached tensors (keyed by the files)."""
    folder = root / JPEG_FOLDER / _split_name(train)
    files = _jpeg_files(folder)
    if not files:
        empty = FileNotFoundError(f"no *.jpg in {folder}")
        raise DatasetNotFoundError(_missing_message(root, empty))
    _check_no_empty_class(folder, files)
    key = {"split": _split_name(train), "files": _files_digest(folder, files),
           "secret": local_secret()}  # no pack can supply this file
    tensors = cached(f"cifar10-jpeg-{_split_name(train)}", key, lambda: _decode(files),
                     check=lambda stored: _decoded_problem(stored, len(files)))
    return tensors["images"], tensors["labels"], "JPEG copy", folder


@loaded_once
def _cifar_split(root: Path, train: bool) -> Split:
    original, jpeg = root / ORIGINAL_FOLDER, root / JPEG_FOLDER / _split_name(train)
    if original.is_dir():
        missing = _missing_batches(original)
        if not missing:
            return _original_split(root, train)
        _report_incomplete(original, missing, jpeg.is_dir())
    if jpeg.is_dir():
        return _jpeg_split(root, train)
    _download(root)
    return _original_split(root, train)


@loaded_once
def _cifar_stats(root: Path) -> tuple[tuple[float, ...], tuple[float, ...]]:
    return channel_stats(_cifar_split(root, True)[0])


def load_cifar10(train: bool = True, root: str | Path | None = None) -> ImageDataset:
    """CIFAR-10 under ``root`` (default: :func:`~kdutils.runtime.data_dir`), as uint8 tensors.

    Reads torchvision's original release if present, else the image-folder JPEG copy
    ``cifar10-jpeg/{train,test}/<class>/*.jpg`` (decoded once, then cached), else downloads the
    original. Normalized with the training split's own per-channel mean and std. The dataset's
    ``name`` and ``source`` say which copy was read: accuracies on the JPEG copy run a little
    lower. An incomplete original folder is skipped for the JPEG copy, with a warning.

    Raises :class:`~kdutils.data.sources.DatasetNotFoundError` when no copy can be found, and
    :class:`~kdutils.data.sources.CorruptDatasetError` (naming the file or folder) for an incomplete
    or corrupted original folder without a JPEG copy, a JPEG that does not decode, or an empty class
    folder."""
    root = resolve_root(root)
    images, labels, kind, folder = _cifar_split(root, train)
    mean, std = _cifar_stats(root)
    name = f"CIFAR-10 {_split_name(train)} ({len(labels):,}, {kind})"
    source = f"{name}, read from {display_path(folder)}"
    return ImageDataset(images, labels, mean, std, name, source)
