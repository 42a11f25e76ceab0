"""Training from the labels: :func:`fit` (cross-entropy in the one loop) and :func:`cached_fit`
(the same, or the result from the checkpoint cache), with the cache key of a training run."""
from __future__ import annotations

from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn

from ..checkpoint import load_or_train
from ..data.datasets import Augment, Batch, ImageDataset, check_labelled
from ..data.text import TokenWindows
from ..identity import legacy_key, model_identity
from ..inference.predict import per_position
from ..runtime import seed_everything, torch_release
from .loop import History, optimizer_key, train_loop


def fit(model: nn.Module, train: ImageDataset, test: ImageDataset, *, epochs: int, lr: float,
        batch_size: int, seed: int = 0, lr_schedule: str = "constant",
        augment: Augment | None = None, max_norm: float | None = None, optimizer: str = "adam",
        label: str = "fit", progress: bool = True) -> History:
    """Train ``model`` with cross-entropy on the hard labels (options as in :func:`train_loop`)."""
    if not isinstance(train, TokenWindows):  # windows leave their prompts out of the loss
        check_labelled(train, "train", "fit needs every label: distill with alpha=0 instead, "
                       "or train on the labelled part")

    def ce(logits: torch.Tensor, batch: Batch) -> dict[str, torch.Tensor]:
        return {"ce": F.cross_entropy(*per_position(logits, batch.labels))}

    return train_loop(model, train, test, ce, epochs=epochs, lr=lr, batch_size=batch_size,
                      seed=seed, lr_schedule=lr_schedule, augment=augment, max_norm=max_norm,
                      optimizer=optimizer, label=label, progress=progress)


def run_key(model: nn.Module, train: ImageDataset, test: ImageDataset,
            **settings: Any) -> dict[str, Any]:
    """A training run's cache key: the model (:func:`~kdutils.identity.model_identity`: repr,
    tensors' names, dtypes and shapes, and the code of classes of yours), the data's
    fingerprints (never their names), the run's ``settings`` and PyTorch's release (see
    :func:`~kdutils.runtime.torch_release`)."""
    return {**model_identity(model), "train": train.fingerprint, "test": test.fingerprint,
            **settings, "torch": torch_release()}


def cached_fit(make_model: Callable[[], nn.Module], name: str, train: ImageDataset,
               test: ImageDataset, *, epochs: int, lr: float, batch_size: int,
               seed: int = 0, lr_schedule: str = "constant", augment: Augment | None = None,
               max_norm: float | None = None, optimizer: str = "adam", progress: bool = True
               ) -> tuple[nn.Module, History]:
    """Build a model after ``seed_everything(seed)`` and :func:`fit` it, or load it from the cache.

    The cache key holds everything that determines the result: architecture, the data (their
    :attr:`~kdutils.data.datasets.ImageDataset.fingerprint`, never their names), epochs, learning
    rate, batch size, seed, schedule, augmentation, constraint and optimizer, and PyTorch's release
    (see :func:`torch_release`)."""
    seed_everything(seed)
    model = make_model()
    options = {"lr_schedule": lr_schedule, "augment": augment, "max_norm": max_norm}
    key = run_key(model, train, test, epochs=epochs, lr=lr, batch_size=batch_size, seed=seed,
                  **{name: repr(value) for name, value in options.items()},
                  **optimizer_key(optimizer))

    def train_rows(m: nn.Module) -> list[dict[str, float]]:
        return fit(m, train, test, epochs=epochs, lr=lr, batch_size=batch_size, seed=seed,
                   optimizer=optimizer, label=name, progress=progress, **options).rows

    model, rows = load_or_train(model, name, key, train_rows, legacy_key=legacy_key(key))
    return model, History(name, rows)
