import numpy as np
import pytest
import torch
from PIL import Image

import kdutils as kd
from kdutils import cifar as kd_cifar


def write_jpeg_folder(root, per_class=2):
    """A tiny CIFAR-10 image-folder copy: flat-coloured 32x32 JPEGs, brightness set by the class."""
    for split in ("train", "test"):
        for label, name in enumerate(kd.CIFAR10_CLASSES):
            folder = root / "cifar10-jpeg" / split / name
            folder.mkdir(parents=True)
            for i in range(per_class):
                pixels = np.full((32, 32, 3), 20 * label + i, dtype=np.uint8)
                Image.fromarray(pixels).save(folder / f"{i:04d}.jpg", quality=95)


@pytest.fixture(autouse=True)
def fresh_loader_caches():
    kd_cifar._cifar_split.cache_clear()
    kd_cifar._cifar_stats.cache_clear()
    yield
    kd_cifar._cifar_split.cache_clear()
    kd_cifar._cifar_stats.cache_clear()


def test_jpeg_folder_loads_with_cifar_label_order_and_own_statistics(tmp_path):
    write_jpeg_folder(tmp_path)
    train = kd.load_cifar10(train=True, root=tmp_path)
    test = kd.load_cifar10(train=False, root=tmp_path)
    assert train.images.shape == (20, 3, 32, 32) and train.images.dtype == torch.uint8
    assert train.labels.tolist() == [label for label in range(10) for _ in range(2)]
    brightness = train.images.float().mean((1, 2, 3))
    assert torch.allclose(brightness, (20 * train.labels + torch.arange(20) % 2).float(), atol=2)
    assert "JPEG copy" in train.name and "cifar10-jpeg" in train.source
    assert test.mean == train.mean and len(test) == 20
    assert train.mean[0] == pytest.approx(brightness.mean().item() / 255, abs=1e-3)


def test_jpeg_folder_is_decoded_once_then_read_from_the_cache(tmp_path, monkeypatch):
    write_jpeg_folder(tmp_path)
    first = kd.load_cifar10(root=tmp_path)
    kd_cifar._cifar_split.cache_clear()
    monkeypatch.setattr(kd_cifar, "_decode", lambda files: pytest.fail("decoded twice"))
    again = kd.load_cifar10(root=tmp_path)
    assert torch.equal(first.images, again.images) and torch.equal(first.labels, again.labels)


def test_a_corrupted_decode_cache_is_reported_and_rebuilt(tmp_path):
    write_jpeg_folder(tmp_path)
    first = kd.load_cifar10(root=tmp_path)
    [cached] = kd.cache_dir().glob("cifar10-jpeg-train-*.pt")
    cached.write_bytes(b"truncated")
    kd_cifar._cifar_split.cache_clear()
    with pytest.warns(UserWarning, match="unreadable"):
        again = kd.load_cifar10(root=tmp_path)
    assert torch.equal(first.images, again.images)


def test_a_folder_without_the_cifar_classes_is_refused(tmp_path):
    (tmp_path / "cifar10-jpeg" / "train" / "cats").mkdir(parents=True)
    with pytest.raises(ValueError, match="one folder per CIFAR-10 class"):
        kd.load_cifar10(root=tmp_path)


def test_missing_cifar_offline_raises_clear_file_not_found(tmp_path, monkeypatch):
    class OfflineCIFAR10:
        def __init__(self, root, train=True, download=False):
            (tmp_path / "empty" / "partial.bin").parent.mkdir(parents=True, exist_ok=True)
            raise RuntimeError("no network")

    monkeypatch.setattr(kd_cifar.datasets, "CIFAR10", OfflineCIFAR10)
    with pytest.raises(kd.DatasetNotFoundError) as info:
        kd.load_cifar10(root=tmp_path / "empty")
    message = str(info.value)
    for needed in ("cifar-10-batches-py", "cifar10-jpeg", "{train,test}/<class>/*.jpg", "airplane",
                   "KD_DATA_DIR"):
        assert needed in message
    assert [p for p in (tmp_path / "empty").rglob("*") if p.is_file()] == []
