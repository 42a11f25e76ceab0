import os

import numpy as np
import pytest
import torch
from PIL import Image

import kdutils as kd
from kdutils.data import cifar as kd_cifar
from kdutils.data.sources import forget_loaded


def write_jpeg_folder(root, per_class=2):
    """A tiny CIFAR-10 image-folder copy: flat-coloured 32x32 JPEGs, brightness set by the class."""
    for split in ("train", "test"):
        for label, name in enumerate(kd.CIFAR10_CLASSES):
            folder = root / "cifar10-jpeg" / split / name
            folder.mkdir(parents=True)
            for i in range(per_class):
                pixels = np.full((32, 32, 3), 20 * label + i, dtype=np.uint8)
                Image.fromarray(pixels).save(folder / f"{i:04d}.jpg", quality=95)


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
    forget_loaded()
    monkeypatch.setattr(Image, "open", lambda *args, **kwargs: pytest.fail("decoded twice"))
    again = kd.load_cifar10(root=tmp_path)
    assert torch.equal(first.images, again.images) and torch.equal(first.labels, again.labels)


def test_moving_a_jpeg_to_another_class_folder_decodes_again_with_its_new_label(tmp_path):
    write_jpeg_folder(tmp_path)
    kd.load_cifar10(root=tmp_path)
    train = tmp_path / "cifar10-jpeg" / "train"
    os.replace(train / "cat" / "0000.jpg", train / "dog" / "0002.jpg")  # same size, same mtime
    forget_loaded()
    moved = kd.load_cifar10(root=tmp_path)
    cat, dog = kd.CIFAR10_CLASSES.index("cat"), kd.CIFAR10_CLASSES.index("dog")
    assert moved.labels.tolist().count(cat) == 1 and moved.labels.tolist().count(dog) == 3
    brightness = moved.images.float().mean((1, 2, 3))
    assert moved.labels[(brightness - 20 * cat).abs().argmin()] == dog


def test_a_corrupted_decode_cache_is_reported_and_rebuilt(tmp_path):
    write_jpeg_folder(tmp_path)
    first = kd.load_cifar10(root=tmp_path)
    [cached] = kd.cache_dir().glob("cifar10-jpeg-train-*.pt")
    cached.write_bytes(b"truncated")
    forget_loaded()
    with pytest.warns(UserWarning, match="unreadable"):
        again = kd.load_cifar10(root=tmp_path)
    assert torch.equal(first.images, again.images)


def test_a_folder_without_the_cifar_classes_is_refused(tmp_path):
    (tmp_path / "cifar10-jpeg" / "train" / "cats").mkdir(parents=True)
    with pytest.raises(ValueError, match="one folder per CIFAR-10 class"):
        kd.load_cifar10(root=tmp_path)


def test_a_truncated_jpeg_is_named_with_the_cause(tmp_path):
    write_jpeg_folder(tmp_path)
    broken = tmp_path / "cifar10-jpeg" / "train" / "cat" / "0001.jpg"
    broken.write_bytes(broken.read_bytes()[:100])
    with pytest.raises(kd.CorruptDatasetError, match="Truncated File Read") as info:
        kd.load_cifar10(root=tmp_path)
    assert str(broken) in str(info.value)


def test_an_empty_class_folder_is_named(tmp_path):
    write_jpeg_folder(tmp_path)
    empty = tmp_path / "cifar10-jpeg" / "train" / "dog"
    for file in empty.glob("*.jpg"):
        file.unlink()
    with pytest.raises(kd.CorruptDatasetError, match="no \\*.jpg") as info:
        kd.load_cifar10(root=tmp_path)
    assert str(empty) in str(info.value)


def test_an_incomplete_original_folder_gives_way_to_the_jpeg_copy(tmp_path):
    write_jpeg_folder(tmp_path)
    (tmp_path / "cifar-10-batches-py").mkdir()
    with pytest.warns(UserWarning, match="cifar-10-batches-py is incomplete"):
        data = kd.load_cifar10(root=tmp_path)
    assert "JPEG copy" in data.name and len(data) == 20


def test_an_incomplete_original_folder_without_jpeg_copy_names_the_missing_files(tmp_path):
    original = tmp_path / "cifar-10-batches-py"
    original.mkdir()
    (original / "data_batch_1").write_bytes(b"batch")
    with pytest.raises(kd.CorruptDatasetError) as info:
        kd.load_cifar10(root=tmp_path)
    message = str(info.value)
    assert f"{original} is incomplete" in message and "cifar-10-python.tar.gz" in message
    for missing in ("data_batch_2", "data_batch_5", "test_batch", "batches.meta"):
        assert missing in message
    assert "data_batch_1" not in message


def test_corrupted_original_batch_files_are_reported_with_their_folder(tmp_path):
    original = tmp_path / "cifar-10-batches-py"
    original.mkdir()
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch", "batches.meta"]:
        (original / name).write_bytes(b"garbage")
    with pytest.raises(kd.CorruptDatasetError, match="corrupted") as info:
        kd.load_cifar10(root=tmp_path)
    assert str(original) in str(info.value)


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


def test_the_decode_cache_key_holds_a_secret_no_pack_can_know(tmp_path, monkeypatch):
    """Issue 27: the key of decoded images was the same for every student with the same files,
    so a pack could install forged images under it."""
    write_jpeg_folder(tmp_path)
    kd.load_cifar10(root=tmp_path)
    secret = (kd.cache_dir() / kd.checkpoint.LOCAL_SECRET).read_text()
    assert len(secret) == 32
    decoded = sorted(kd.cache_dir().glob("cifar10-jpeg-train-*.pt"))
    payload = torch.load(decoded[0], weights_only=True)
    assert payload["key"]["secret"] == secret
    monkeypatch.setenv("KD_CACHE_DIR", str(tmp_path / "classmate"))
    assert kd.checkpoint.local_secret() != secret, "every cache has its own"


def test_decoded_images_of_the_wrong_shape_are_reported_and_decoded_again(tmp_path):
    write_jpeg_folder(tmp_path)
    genuine = kd.load_cifar10(root=tmp_path)
    path = next(kd.cache_dir().glob("cifar10-jpeg-train-*.pt"))
    payload = torch.load(path, weights_only=True)
    payload["value"]["images"] = payload["value"]["images"][:5]
    kd.checkpoint.save_atomically(payload, path)
    forget_loaded()
    with pytest.warns(UserWarning, match="does not hold 20 decoded 3x32x32 uint8 images"):
        again = kd.load_cifar10(root=tmp_path)
    assert torch.equal(again.images, genuine.images)
