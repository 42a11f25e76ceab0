"""Shared fixtures: small synthetic datasets, so unit tests are fast, offline and deterministic."""
import pytest
import torch

from kdutils import ImageDataset
from kdutils.data.sources import forget_loaded



def synthetic_dataset(n: int = 96, classes: int = 3, seed: int = 0) -> ImageDataset:
    """Random 1x4x4 uint8 images whose label is set by the mean brightness band (learnable)."""
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 1, 4, 4), dtype=torch.uint8, generator=g)
    labels = (images.float().mean((1, 2, 3)) / 256 * classes).long().clamp(max=classes - 1)
    return ImageDataset(images, labels, (0.5,), (0.25,), f"synthetic-{n}-{seed}", "synthetic")


@pytest.fixture
def tiny_data() -> ImageDataset:
    return synthetic_dataset()


@pytest.fixture
def make_dataset():
    """The factory of synthetic datasets, for tests that need other sizes or class counts."""
    return synthetic_dataset


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    """Every test gets its own empty checkpoint cache."""
    monkeypatch.setenv("KD_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture(autouse=True)
def fresh_loader_caches():
    """Every test reads dataset files anew: the loaders keep what they read for the process."""
    forget_loaded()
    yield
    forget_loaded()
