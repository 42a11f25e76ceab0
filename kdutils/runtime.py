"""Seeding, device choice, project paths, the quick-mode switch read by every notebook, and the
PyTorch release that checkpoints are keyed on."""
from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import torch

PROJECT_ROOT = Path(__file__).resolve().parent.parent
QUICK_ENV = "KD_QUICK"
DATA_ENV = "KD_DATA_DIR"


def quick_mode(default: bool = False) -> bool:
    """Quick mode (small data, few epochs) or full mode, for a notebook's first cell.

    ``$KD_QUICK`` wins when set: 1/true/yes for quick, 0/false/no for full (CI sets it). Else
    ``default``, which a student flips in the notebook: ``QUICK = kd.quick_mode(default=True)``.
    """
    value = os.environ.get(QUICK_ENV, "").strip().lower()
    if value in {"1", "true", "yes"}:
        return True
    if value in {"0", "false", "no"}:
        return False
    if value:
        raise ValueError(f"{QUICK_ENV} must be 1/true/yes (quick) or 0/false/no (full), got "
                         f"{value!r}; unset it to use the notebook's default")
    return default


def data_dir() -> Path:
    """The datasets' folder: ``$KD_DATA_DIR`` if set, else the project's ``data/`` (never the CWD)."""
    override = os.environ.get(DATA_ENV)
    return Path(override).expanduser().resolve() if override else PROJECT_ROOT / "data"


def display_path(path: Path) -> str:
    """``path`` relative to the project (``data``) when inside it, else absolute: for printing."""
    try:
        return str(path.resolve().relative_to(PROJECT_ROOT))
    except ValueError:
        return str(path)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and PyTorch so that a model built next gets the same initial weights."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def pick_device() -> torch.device:
    """The fastest available device: CUDA, then Apple's MPS, then the CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def torch_release() -> str:
    """PyTorch's ``major.minor``, the release checkpoints are keyed on: patch releases are taken to
    keep results, so a teacher trained under 2.14.0 is reused under 2.14.1 (and a teacher pack
    moves between them)."""
    return ".".join(torch.__version__.split("+")[0].split(".")[:2])
