"""A checkpoint cache keyed by everything that determines a result: ``cache/<name>-<hash>.pt``.

Writes go to a temporary file in the cache folder, then ``os.replace``: a reader never sees a
half-written file. Checkpoints get the usual permissions for new files (0o666 less the umask),
and temporaries orphaned by killed runs are removed by later writes. A file that is unreadable,
not a checkpoint, or made for another key is reported and recomputed; a write that fails after
computing (a full disk) is reported, and the computed result is returned all the same. Trained
weights that do not fit the model asked for (other tensor names, shapes or dtypes) are reported
with the file's path and retrained.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import secrets
import time
import warnings
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from .identity import tensor_signature
from .runtime import PROJECT_ROOT

CACHE_ENV = "KD_CACHE_DIR"

STALE_TEMPORARY_SECONDS = 3600
"""Age of a temporary after which it is an orphan of a killed run. A write takes seconds and
moves its temporary's mtime as it goes, so a concurrent writer's temporary is never this old."""

_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]*")
_MEMORY_ADDRESS = re.compile(r"\bat 0x[0-9a-fA-F]+")


def cache_dir() -> Path:
    """Checkpoints' folder: ``$KD_CACHE_DIR`` if set, else the project's ``cache/`` (untracked)."""
    override = os.environ.get(CACHE_ENV)
    return Path(override).expanduser().resolve() if override else PROJECT_ROOT / "cache"


LOCAL_SECRET = ".local-secret"


def local_secret() -> str:
    """A random value made once per cache folder and never exported.

    A key that holds it cannot be computed anywhere else, so no teacher pack can supply the file
    of such a key: the decoded-dataset caches use it. If the folder cannot be written, a value
    for this process only (the cache then just misses).
    """
    path = cache_dir() / LOCAL_SECRET
    try:
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f"{LOCAL_SECRET}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
            tmp.write_text(secrets.token_hex(16))
            with contextlib.suppress(FileExistsError):  # another process made it first
                os.link(tmp, path)
            tmp.unlink()
        return path.read_text().strip()
    except OSError:
        return _PROCESS_SECRET


_PROCESS_SECRET = secrets.token_hex(16)


def check_name(name: str) -> None:
    """Raise ValueError unless ``name`` is a plain file-name stem, as it names a file."""
    if not isinstance(name, str) or not _NAME.fullmatch(name) or ".." in name:
        raise ValueError(f"name must be a plain file-name stem (letters, digits, '.', '_', '-'; "
                         f"not starting with '.', no '..'), such as 'mnist-teacher'; got {name!r}")


def check_stable(key: dict[str, Any]) -> None:
    """Raise ValueError if an entry of ``key`` holds a memory address: no later run repeats it."""
    for entry, value in key.items():
        text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
        if _MEMORY_ADDRESS.search(text):
            raise ValueError(
                f"key entry {entry}={text} has no stable repr, so the cache could never find this "
                f"checkpoint again; pass a class with a __repr__ that describes its settings, such "
                f"as kdutils.RandomShift(2)")


def checkpoint_path(name: str, key: dict[str, Any]) -> Path:
    """``cache/<name>-<hash of key>.pt``; ``key`` must be JSON-serializable and stable."""
    check_name(name)
    check_stable(key)
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    return cache_dir() / f"{name}-{digest}.pt"  # a plain stem cannot leave the folder


def remove_stale_temporaries(folder: Path) -> None:
    """Delete temporaries in ``folder`` older than :data:`STALE_TEMPORARY_SECONDS`."""
    cutoff = time.time() - STALE_TEMPORARY_SECONDS
    for tmp in folder.glob(".*.pt.*.tmp"):
        with contextlib.suppress(OSError):  # already removed by another run, or not ours to remove
            if tmp.stat().st_mtime < cutoff:
                tmp.unlink()


def save_atomically(payload: dict[str, Any], path: Path) -> None:
    """Write with ``torch.save`` to ``.<file name>.<pid>.<random>.tmp``, then rename over ``path``.

    The temporary is created like ``open(path, "wb")`` would: mode 0o666 less the umask.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path.parent)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)  # binary: Windows
    fd = os.open(tmp, flags, 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(payload, f)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _load_matching(path: Path, key: dict[str, Any]) -> dict[str, Any] | None:
    """The stored payload if ``path`` holds a readable checkpoint for ``key``, else None (warns)."""
    if not path.exists():
        return None
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # truncated, corrupted or not a checkpoint at all
        warnings.warn(f"ignoring unreadable checkpoint {path} ({error}); retraining")
        return None
    if not isinstance(payload, dict) or "key" not in payload:
        warnings.warn(f"ignoring {path}: it holds a {type(payload).__name__}, not a checkpoint "
                      f"with a 'key' and a 'value'; it will be recomputed and overwritten")
        return None
    if payload["key"] != json.loads(json.dumps(key, sort_keys=True)):
        warnings.warn(f"checkpoint {path} was made for {payload['key']}, not {key}; retraining")
        return None
    if "value" not in payload:
        warnings.warn(f"checkpoint {path} is in an older format; recomputing")
        return None
    return payload


def _save_or_warn(value: dict[str, Any], key: dict[str, Any], path: Path) -> None:
    """Cache ``value``; if the write fails (a full disk), warn instead: ``value`` is still good."""
    try:
        save_atomically({"key": key, "value": value}, path)
    except (OSError, RuntimeError) as error:  # torch.save's writer reports a full disk as either
        warnings.warn(f"could not save checkpoint {path} ({error}); the result is returned but not "
                      f"cached: free disk space or set {CACHE_ENV} to a writable folder")


Check = Callable[[dict[str, Any]], "str | None"]
"""Says what is wrong with a stored value for its use (None when it is usable)."""


def _usable(path: Path, key: dict[str, Any], check: Check | None) -> dict[str, Any] | None:
    """The stored value at ``path`` if it is a checkpoint for ``key`` that passes ``check``."""
    payload = _load_matching(path, key)
    if payload is None:
        return None
    problem = check(payload["value"]) if check is not None else None
    if problem is not None:
        warnings.warn(f"ignoring checkpoint {path}: {problem}; recomputing it")
        return None
    return payload["value"]


def cached(name: str, key: dict[str, Any], compute: Callable[[], dict[str, Any]], *,
           check: Check | None = None, legacy_key: dict[str, Any] | None = None
           ) -> dict[str, Any]:
    """``compute()``'s result (a dict of tensors and plain values), or the cached one for ``key``.

    For expensive, deterministic results such as decoded images or trained weights. ``name`` and
    ``key`` are checked before computing. A corrupted, foreign or mismatched file, or one whose
    value fails ``check``, is reported and recomputed; a failed write is reported and the result
    returned uncached. ``legacy_key``: the key an earlier kdutils gave the same result; a file
    found under it (and passing ``check``) is used and saved under ``key``, once.
    """
    path = checkpoint_path(name, key)
    value = _usable(path, key, check)
    if value is None and legacy_key is not None:
        value = _usable(checkpoint_path(name, legacy_key), legacy_key, check)
        if value is not None:
            _save_or_warn(value, key, path)
    if value is None:
        value = compute()
        _save_or_warn(value, key, path)
    return value


def weights_problem(model: nn.Module, value: Any) -> str | None:
    """What keeps a stored ``{"state_dict", "result"}`` from loading into ``model``, or None."""
    if not isinstance(value, dict) or set(value) != {"state_dict", "result"} \
            or not isinstance(value["state_dict"], dict):
        return "it does not hold trained weights ({'state_dict', 'result'})"
    stored, expected = tensor_signature(value["state_dict"]), tensor_signature(model.state_dict())
    if len(stored) != len(value["state_dict"]) or sorted(stored) != sorted(expected):
        differ = sorted(set(stored) ^ set(expected))[:4]
        return (f"its tensors do not fit the model (name dtype shape, in one but not the other: "
                f"{differ})")
    return None


def load_or_train(model: nn.Module, name: str, key: dict[str, Any],
                  train: Callable[[nn.Module], Any], *,
                  legacy_key: dict[str, Any] | None = None) -> tuple[nn.Module, Any]:
    """Load ``model``'s weights from the cache, or call ``train(model)`` and cache the result.

    Returns ``(model, result)``, where ``result`` is what ``train`` returned (for instance a
    :class:`~kdutils.training.loop.History`'s rows), stored alongside the weights. Stored weights
    whose tensors do not fit ``model`` are reported with the file's path and trained again.
    ``legacy_key`` as in :func:`cached`."""
    def trained() -> dict[str, Any]:
        result = train(model)
        return {"state_dict": model.state_dict(), "result": result}

    value = cached(name, key, trained, check=lambda stored: weights_problem(model, stored),
                   legacy_key=legacy_key)
    model.load_state_dict(value["state_dict"])
    return model, value["result"]
