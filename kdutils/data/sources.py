"""Where dataset files come from: the data folder, torchvision downloads staged in a temporary
folder, and the errors for a dataset that is missing or broken. Shared by the MNIST and CIFAR-10
loaders."""
from __future__ import annotations

import contextlib
import functools
import io
import shutil
import tempfile
from pathlib import Path
from typing import Callable, Iterable, TypeVar

from ..runtime import data_dir


Loader = TypeVar("Loader", bound=Callable)
_LOADED: list = []  # the loaders' caches, for forget_loaded


def loaded_once(loader: Loader) -> Loader:
    """Cache ``loader``'s results for the process (``functools.lru_cache``), so a dataset is
    read from disk once; :func:`forget_loaded` clears every such cache."""
    cached = functools.lru_cache(maxsize=None)(loader)
    _LOADED.append(cached)
    return cached


def forget_loaded() -> None:
    """Forget the datasets read so far in this process: the next load reads the files again
    (after replacing a broken file, say)."""
    for cached in _LOADED:
        cached.cache_clear()


class DatasetNotFoundError(FileNotFoundError):
    """A dataset is neither on disk nor downloadable; the message says which files go where."""


class CorruptDatasetError(ValueError):
    """A dataset file is on disk but broken; the message names the file, the fault and the fix."""


def resolve_root(root: str | Path | None) -> Path:
    """The absolute dataset folder: ``root`` with ``~`` expanded, or :func:`data_dir` if None."""
    return Path(root).expanduser().resolve() if root is not None else data_dir()


def download_or_explain(download: Callable[[], object], explain: Callable[[Exception], str]
                        ) -> None:
    """Run a torchvision download quietly; any failure becomes a :class:`DatasetNotFoundError`
    whose message is ``explain(error)`` (URLError, RuntimeError, OSError: all mean "not there")."""
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            download()
    except Exception as error:
        raise DatasetNotFoundError(explain(error)) from error


def download_staged(root: Path, label: str, download: Callable[[Path], object],
                    explain: Callable[[Exception], str], install: Callable[[Path], None],
                    provided: Iterable[tuple[Path, str]] = ()) -> None:
    """Download with torchvision into a temporary folder inside ``root``, then ``install`` it.

    ``provided`` are ``(file, path inside the temporary folder)`` pairs copied in first, so that
    torchvision unpacks archives the user put there instead of downloading them. ``download``
    and ``install`` get the temporary folder. A failure raises :class:`DatasetNotFoundError`
    with ``explain(error)``; a failed or interrupted download leaves ``root`` as it was.
    """
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root, prefix=f".{label}-download-") as tmp:
        staging = Path(tmp)
        for file, inside in provided:
            (staging / inside).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(file, staging / inside)
        download_or_explain(lambda: download(staging), explain)
        install(staging)
