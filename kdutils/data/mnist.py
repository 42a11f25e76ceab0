"""MNIST: torchvision's IDX files, downloaded if missing, loaded once per process."""
from __future__ import annotations

import math
import os
import struct
from pathlib import Path

import torch
from torchvision import datasets

from ..runtime import DATA_ENV, display_path
from .datasets import ImageDataset, channel_stats
from .sources import CorruptDatasetError, download_staged, loaded_once, resolve_root

MNIST_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
IMAGES_MAGIC = 0x00000803  # IDX header: uint8 data, 3 dimensions (count, rows, columns)
LABELS_MAGIC = 0x00000801  # IDX header: uint8 data, 1 dimension (count)
IMAGE_SHAPE = (28, 28)


def _raw_folder(root: Path) -> Path:
    return root / "MNIST" / "raw"


def _missing_mnist_message(root: Path, cause: Exception) -> str:
    files = ", ".join(MNIST_FILES)
    return (f"MNIST is not in {_raw_folder(root)} and could not be downloaded "
            f"({type(cause).__name__}). Put the four files {files} (or the same names with .gz) "
            f"into {_raw_folder(root)}, or point {DATA_ENV} at a folder that has "
            "MNIST/raw/. See data/README.md.")


def _download_mnist(root: Path) -> None:
    """Download (or unpack user-provided .gz files) in a temporary folder, then move into place.

    Only the missing files are moved in: a file already there, even a broken one, is kept (and
    then reported by :func:`_check_split`), never silently replaced. A failed or interrupted
    download leaves ``root/MNIST/raw`` as it was.
    """
    raw = _raw_folder(root)
    archives = sorted(raw.glob("*.gz")) if raw.is_dir() else []

    def install(staging: Path) -> None:
        raw.mkdir(parents=True, exist_ok=True)
        for name in MNIST_FILES:
            if not (raw / name).is_file():
                os.replace(_raw_folder(staging) / name, raw / name)

    download_staged(root, "mnist", lambda staging: datasets.MNIST(staging, train=True,
                                                                  download=True),
                    lambda error: _missing_mnist_message(root, error), install,
                    [(archive, f"MNIST/raw/{archive.name}") for archive in archives])


def _split_files(root: Path, train: bool) -> tuple[Path, Path]:
    """The image and label files of one split."""
    prefix = "train" if train else "t10k"
    raw = _raw_folder(root)
    return raw / f"{prefix}-images-idx3-ubyte", raw / f"{prefix}-labels-idx1-ubyte"


def _broken(file: Path, problem: str) -> CorruptDatasetError:
    return CorruptDatasetError(
        f"{file} is broken: {problem}. Delete it to download it again, or replace it with a "
        "complete copy; see data/README.md.")


def _idx_dims(file: Path, magic: int) -> tuple[int, ...]:
    """The dimensions in ``file``'s IDX header, after checking its magic number and its size."""
    header_size = 4 * (1 + (magic & 0xFF))  # the magic number, then one uint32 per dimension
    size = file.stat().st_size
    with file.open("rb") as f:
        header = f.read(header_size)
    if len(header) < header_size:
        raise _broken(file, f"it has {size} bytes, fewer than its {header_size}-byte header")
    found, *dims = struct.unpack(f">{header_size // 4}I", header)
    if found != magic:
        raise _broken(file, f"its magic number is 0x{found:08X}, expected 0x{magic:08X}")
    expected = header_size + math.prod(dims)
    if size != expected:
        state = "truncated" if size < expected else "too long"
        raise _broken(file, f"it is {state}: {size:,} bytes, where its header "
                            f"({' x '.join(map(str, dims))}) needs {expected:,}")
    return tuple(dims)


def _check_split(images_file: Path, labels_file: Path) -> None:
    """Check both files' headers and sizes, the image size, and one label per image."""
    count, *shape = _idx_dims(images_file, IMAGES_MAGIC)
    (labels,) = _idx_dims(labels_file, LABELS_MAGIC)
    if tuple(shape) != IMAGE_SHAPE:
        raise _broken(images_file, f"its images are {shape[0]}x{shape[1]}, MNIST's are 28x28")
    if labels != count:
        raise _broken(labels_file, f"it holds {labels:,} labels for the {count:,} images of "
                                   f"{images_file.name}")


def _check_labels(labels: torch.Tensor, labels_file: Path) -> None:
    """Raise if a label is outside 0..9."""
    outside = torch.nonzero(labels > 9).flatten()
    if len(outside):
        first = int(outside[0])
        raise _broken(labels_file, f"label {int(labels[first])} at position {first:,} is outside "
                                   "0..9")


@loaded_once
def _mnist_tensors(root: Path, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
    if not all((_raw_folder(root) / name).is_file() for name in MNIST_FILES):
        _download_mnist(root)
    images_file, labels_file = _split_files(root, train)
    _check_split(images_file, labels_file)
    split = datasets.MNIST(root, train=train, download=False)
    _check_labels(split.targets, labels_file)
    return split.data.unsqueeze(1).contiguous(), split.targets.long()


@loaded_once
def _mnist_stats(root: Path) -> tuple[tuple[float, ...], tuple[float, ...]]:
    return channel_stats(_mnist_tensors(root, True)[0])


def load_mnist(train: bool = True, root: str | Path | None = None) -> ImageDataset:
    """MNIST via ``torchvision.datasets.MNIST`` under ``root`` (default: :func:`data_dir`).

    Loaded once per process into uint8 tensors; normalized with the training split's statistics.
    Raises :class:`~kdutils.data.sources.DatasetNotFoundError` when files are missing and cannot be
    downloaded, :class:`~kdutils.data.sources.CorruptDatasetError` (naming the file) when one is
    broken: bad magic number or header, truncated or too long, image and label counts that differ,
    images not 28x28, labels outside 0..9."""
    root = resolve_root(root)
    images, labels = _mnist_tensors(root, train)
    mean, std = _mnist_stats(root)
    name = f"MNIST {'train' if train else 'test'} ({len(labels):,})"
    return ImageDataset(images, labels, mean, std, name,
                        f"{name}, torchvision IDX files in {display_path(root)}")
