"""MNIST loading: valid IDX files read as before; a broken one is named with its fault and fix."""
import struct
from pathlib import Path

import pytest
import torch
from torchvision import datasets

import kdutils as kd

IMAGES, LABELS = 0x00000803, 0x00000801


def idx(magic: int, dims: tuple[int, ...], payload: bytes) -> bytes:
    """An IDX file: big-endian magic number, one uint32 per dimension, then the uint8 payload."""
    return struct.pack(f">{1 + len(dims)}I", magic, *dims) + payload


def write_mnist(raw: Path, count: int = 3, first_pixel: int = 0,
                prefixes: tuple[str, ...] = ("train", "t10k")) -> None:
    """Tiny IDX files: ``count`` 28x28 images of increasing pixel values, labels 0, 1, 2, ..."""
    raw.mkdir(parents=True, exist_ok=True)
    pixels = bytes((first_pixel + i) % 256 for i in range(count * 28 * 28))
    for prefix in prefixes:
        (raw / f"{prefix}-images-idx3-ubyte").write_bytes(idx(IMAGES, (count, 28, 28), pixels))
        labels = idx(LABELS, (count,), bytes(range(count)))
        (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(labels)


@pytest.fixture(autouse=True)
def downloads(monkeypatch):
    """torchvision's MNIST download, offline: it writes 5-image files and records each call."""
    calls = []

    def download(self):
        calls.append(self.raw_folder)
        write_mnist(Path(self.raw_folder), count=5, first_pixel=100)

    monkeypatch.setattr(datasets.MNIST, "download", download)
    return calls


@pytest.mark.parametrize("name, corrupt, fault", [
    ("train-images-idx3-ubyte", lambda b: b[:-10], "truncated"),
    ("train-labels-idx1-ubyte", lambda b: b + b"\0", "too long"),
    ("train-images-idx3-ubyte", lambda b: struct.pack(">I", LABELS) + b[4:],
     "magic number is 0x00000801, expected 0x00000803"),
    ("train-labels-idx1-ubyte", lambda b: b[:6], "6 bytes, fewer than its 8-byte header"),
    ("train-labels-idx1-ubyte", lambda b: idx(LABELS, (4,), bytes(4)),
     "4 labels for the 3 images"),
    ("train-labels-idx1-ubyte", lambda b: b[:-1] + bytes([10]), "label 10 at position 2"),
    ("train-images-idx3-ubyte", lambda b: idx(IMAGES, (3, 27, 27), bytes(3 * 27 * 27)),
     "27x27"),
], ids=["truncated", "too-long", "bad-magic", "short-header", "count-mismatch", "label-10",
        "27x27"])
def test_a_broken_file_is_named_with_its_fault_and_not_downloaded_over(tmp_path, downloads, name,
                                                                      corrupt, fault):
    raw = tmp_path / "MNIST" / "raw"
    write_mnist(raw)
    file = raw / name
    broken = corrupt(file.read_bytes())
    file.write_bytes(broken)
    with pytest.raises(kd.CorruptDatasetError, match=fault) as info:
        kd.load_mnist(root=tmp_path)
    assert not isinstance(info.value, FileNotFoundError)
    assert str(file) in str(info.value) and "data/README.md" in str(info.value)
    assert downloads == [] and file.read_bytes() == broken


def test_a_download_fills_in_missing_files_and_keeps_the_present_ones(tmp_path, downloads):
    write_mnist(tmp_path / "MNIST" / "raw", prefixes=("train",))
    train, test = kd.load_mnist(True, root=tmp_path), kd.load_mnist(False, root=tmp_path)
    assert len(downloads) == 1 and len(test) == 5
    expected = torch.arange(3 * 28 * 28).remainder(256).to(torch.uint8).view(3, 1, 28, 28)
    assert train.images.dtype == torch.uint8 and torch.equal(train.images, expected)
    assert train.labels.dtype == torch.int64 and train.labels.tolist() == [0, 1, 2]
