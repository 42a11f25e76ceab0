from pathlib import Path
from urllib.error import URLError

import pytest
import torch

import kdutils as kd
from kdutils.data import mnist as kd_mnist
from kdutils.data import channel_stats, iterate_batches
from kdutils.runtime import data_dir


class OfflineMNIST:
    """Stands in for torchvision's MNIST on a machine without the files and without internet."""

    def __init__(self, root, train=True, download=False):
        if download:
            partial = Path(root) / "MNIST" / "raw" / "train-images-idx3-ubyte.gz"
            partial.parent.mkdir(parents=True, exist_ok=True)
            partial.write_bytes(b"half a download")
            raise URLError("no network")
        raise RuntimeError("Dataset not found. You can use download=True to download it")


def test_missing_mnist_offline_raises_clear_file_not_found(tmp_path, monkeypatch):
    monkeypatch.setattr(kd_mnist.datasets, "MNIST", OfflineMNIST)
    with pytest.raises(kd.DatasetNotFoundError) as info:
        kd.load_mnist(root=tmp_path / "empty")
    assert isinstance(info.value, FileNotFoundError)
    message = str(info.value)
    for needed in ("train-images-idx3-ubyte", "t10k-labels-idx1-ubyte", "MNIST/raw", "KD_DATA_DIR"):
        assert needed in message
    leftovers = [p for p in (tmp_path / "empty").rglob("*") if p.is_file()]
    assert leftovers == [], "a failed download must not leave files behind"


def test_data_dir_follows_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("KD_DATA_DIR", str(tmp_path))
    assert data_dir() == tmp_path.resolve()
    monkeypatch.delenv("KD_DATA_DIR")
    assert data_dir() == Path(kd.__file__).resolve().parent.parent / "data"


@pytest.mark.parametrize("value, default, expected", [
    ("1", False, True), ("true", False, True), ("yes", True, True),  # the environment wins
    ("0", True, False), ("no", True, False),
    ("", False, False), ("", True, True),  # unset: the notebook's switch decides
])
def test_quick_mode_switch(monkeypatch, value, default, expected):
    monkeypatch.setenv("KD_QUICK", value)
    assert kd.quick_mode(default=default) is expected


def test_quick_mode_refuses_a_value_it_cannot_read(monkeypatch):
    monkeypatch.setenv("KD_QUICK", "fast")
    with pytest.raises(ValueError, match="KD_QUICK must be 1/true/yes"):
        kd.quick_mode()


def test_shuffled_batches_cover_every_sample_once(tiny_data):
    batches = list(iterate_batches(tiny_data, 10, shuffle=True,
                                      generator=torch.Generator().manual_seed(0), chunk_size=32))
    seen = torch.cat([b.index for b in batches])
    assert sorted(seen.tolist()) == list(range(len(tiny_data)))
    assert seen.tolist() != list(range(len(tiny_data)))
    assert [len(b.index) for b in batches][-1] == len(tiny_data) % 10


def test_batches_hold_the_indexed_samples(tiny_data):
    for batch in iterate_batches(tiny_data, 7, shuffle=True,
                                    generator=torch.Generator().manual_seed(1), chunk_size=20):
        torch.testing.assert_close(batch.inputs, tiny_data.normalized(batch.index))
        torch.testing.assert_close(batch.labels, tiny_data.labels[batch.index])


def test_normalization_uses_the_dataset_statistics(tiny_data):
    x = tiny_data.normalized(torch.tensor([0]))
    expected = (tiny_data.images[:1].float() / 255 - 0.5) / 0.25
    torch.testing.assert_close(x, expected)


def test_channel_stats_on_known_images():
    images = torch.tensor([0, 255], dtype=torch.uint8).view(2, 1, 1, 1)
    mean, std = channel_stats(images)
    assert mean == pytest.approx((0.5,)) and std == pytest.approx((0.7071068,))


def test_channel_stats_match_a_direct_float_computation():
    images = torch.randint(0, 256, (50, 3, 5, 7), dtype=torch.uint8,
                           generator=torch.Generator().manual_seed(0))
    x = images.double().div(255).transpose(0, 1).reshape(3, -1)
    mean, std = channel_stats(images)
    assert mean == pytest.approx(x.mean(1).tolist(), rel=1e-12)
    assert std == pytest.approx(x.std(1).tolist(), rel=1e-12)


def test_subset_is_reproducible_and_named(tiny_data):
    a, b = tiny_data.subset(10, seed=2), tiny_data.subset(10, seed=2)
    assert torch.equal(a.images, b.images) and len(a) == 10
    assert "subset of 10" in a.name
    with pytest.raises(ValueError, match="size"):
        tiny_data.subset(0)


def test_without_classes_drops_exactly_those_labels(tiny_data):
    kept = tiny_data.without_classes(1)
    assert set(kept.labels.tolist()) == set(tiny_data.labels.tolist()) - {1}
    assert len(kept) == int((tiny_data.labels != 1).sum())
    assert kept.mean == tiny_data.mean and "without class 1" in kept.name
    with pytest.raises(ValueError, match="classes"):
        tiny_data.without_classes(7)


def test_augment_is_applied_to_the_uint8_images_before_normalizing(tiny_data):
    def invert(images, generator):
        return 255 - images

    batch = next(iterate_batches(tiny_data, 8, augment=invert))
    expected = tiny_data.normalize(255 - tiny_data.images[batch.index])
    torch.testing.assert_close(batch.inputs, expected)


def test_large_images_are_normalized_a_bounded_number_of_bytes_at_a_time(monkeypatch):
    """Issue 27: 8,192 samples of 3x224x224 were normalized at once (4.9 GB) for a batch of 1."""
    from kdutils.data import datasets as kd_data
    images = torch.zeros(1, 3, 224, 224, dtype=torch.uint8).expand(600, -1, -1, -1)
    big = kd.ImageDataset(images, torch.zeros(600).long(), (0.5,) * 3, (0.25,) * 3, "big", "big")
    normalized = []
    original = kd.ImageDataset.normalize
    monkeypatch.setattr(kd.ImageDataset, "normalize",
                        lambda self, chunk: normalized.append(len(chunk)) or original(self, chunk))
    first = next(iterate_batches(big, batch_size=1))
    assert first.inputs.shape == (1, 3, 224, 224)
    assert 1 <= normalized[0] and normalized[0] * 3 * 224 * 224 * 4 <= kd_data.CHUNK_BYTES
    assert kd_data.chunk_samples(big, batch_size=4096) == 4096, "at least one whole batch"
    assert kd_data.chunk_samples(kd.ImageDataset(images[:, :1, :28, :28], torch.zeros(600).long(),
                                                 (0.5,), (0.25,), "small", "small"),
                                 batch_size=64) == 8192, "small images as before"
