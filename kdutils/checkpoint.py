"""A checkpoint cache keyed by everything that determines a trained model; writes are atomic."""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from .runtime import PROJECT_ROOT

CACHE_ENV = "KD_CACHE_DIR"


def cache_dir() -> Path:
    """Checkpoints' folder: ``$KD_CACHE_DIR`` if set, else the project's ``cache/`` (git-ignored)."""
    override = os.environ.get(CACHE_ENV)
    return Path(override).expanduser().resolve() if override else PROJECT_ROOT / "cache"


def checkpoint_path(name: str, key: dict[str, Any]) -> Path:
    """``cache/<name>-<hash of key>.pt``; ``key`` must be JSON-serializable."""
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    return cache_dir() / f"{name}-{digest}.pt"


def save_atomically(payload: dict[str, Any], path: Path) -> None:
    """Write with ``torch.save`` to a temporary file, then rename: never a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(payload, f)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def _load_matching(path: Path, key: dict[str, Any]) -> dict[str, Any] | None:
    """The stored payload if ``path`` holds a readable checkpoint for ``key``, else None (warned)."""
    if not path.exists():
        return None
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # truncated, corrupted or not a checkpoint at all
        warnings.warn(f"ignoring unreadable checkpoint {path} ({error}); retraining")
        return None
    if payload.get("key") != json.loads(json.dumps(key, sort_keys=True)):
        warnings.warn(f"checkpoint {path} was made for {payload.get('key')}, not {key}; retraining")
        return None
    if "value" not in payload:
        warnings.warn(f"checkpoint {path} is in an older format; recomputing")
        return None
    return payload


def cached(name: str, key: dict[str, Any], compute: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """``compute()``'s result (a dict of tensors and plain values), or the cached one for ``key``.

    For expensive, deterministic results such as decoded images or trained weights. A corrupted
    or mismatched file is reported and recomputed; writes are atomic.
    """
    path = checkpoint_path(name, key)
    payload = _load_matching(path, key)
    if payload is not None:
        return payload["value"]
    value = compute()
    save_atomically({"key": key, "value": value}, path)
    return value


def load_or_train(model: nn.Module, name: str, key: dict[str, Any],
                  train: Callable[[nn.Module], Any]) -> tuple[nn.Module, Any]:
    """Load ``model``'s weights from the cache, or call ``train(model)`` and cache the result.

    Returns ``(model, result)``, where ``result`` is what ``train`` returned (for instance a
    :class:`~kdutils.train.History`'s rows), stored alongside the weights.
    """
    def trained() -> dict[str, Any]:
        result = train(model)
        return {"state_dict": model.state_dict(), "result": result}

    value = cached(name, key, trained)
    model.load_state_dict(value["state_dict"])
    return model, value["result"]
