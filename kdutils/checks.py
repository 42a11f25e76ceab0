"""Argument checks shared by the losses and the training loops: each error names the argument
and says how to fix it."""
from __future__ import annotations

import math
from numbers import Integral, Real

import torch

# float32 rounding in a softmax is about 1e-7, and the T**2 factor of the soft losses multiplies
# it: at T=1000 the loss is off by about 1e-2, at T=1e5 it comes out negative. float64 is exact
# enough far beyond any temperature used in practice.
MAX_LOSS_TEMPERATURE = {torch.float64: 1e5}
MAX_LOSS_TEMPERATURE_DEFAULT = 100.0


def _refuse_tensor(value: object, name: str) -> None:
    """Raise ``ValueError`` if ``value`` is a tensor: settings are plain Python numbers."""
    if isinstance(value, torch.Tensor):
        raise ValueError(f"{name} must be a Python number, got a tensor {value!r}; pass "
                         f"{name}.item() instead")


def check_positive(value: float, name: str, hint: str = "") -> None:
    """Raise ``ValueError`` unless ``value`` is a finite number > 0; ``hint`` ends the message."""
    _refuse_tensor(value, name)
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value) \
            or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {name}={value!r}" +
                         (f" ({hint})" if hint else ""))


def check_temperature(T: float) -> None:
    """Raise ``ValueError`` unless ``T`` is a finite number > 0."""
    check_positive(T, "T", "the temperature T: T=1 is the plain softmax; Hinton et al. use 2 to 20")


def check_loss_temperature(T: float, dtype: torch.dtype) -> None:
    """:func:`check_temperature`, and refuse a ``T`` too large for the loss's precision."""
    check_temperature(T)
    limit = MAX_LOSS_TEMPERATURE.get(dtype, MAX_LOSS_TEMPERATURE_DEFAULT)
    if T > limit:
        raise ValueError(f"temperature T={T:g} is above {limit:g}, where {dtype} rounding, "
                         "multiplied by T**2, makes the soft loss inaccurate (even negative); "
                         "use a smaller T, or float64 logits (.double()) to study the limit")


def check_weight(value: float, name: str) -> None:
    """Raise ``ValueError`` unless the loss weight ``value`` lies in [0, 1]."""
    _refuse_tensor(value, name)
    if isinstance(value, bool) or not isinstance(value, Real) or not 0 <= value <= 1:
        raise ValueError(f"{name} is a loss weight and must lie in [0, 1], got {name}={value!r}")


def check_fraction(value: float, name: str, hint: str) -> None:
    """Raise ``ValueError`` unless ``value`` is a share in [0, 1]; ``hint`` says what it is."""
    _refuse_tensor(value, name)
    if isinstance(value, bool) or not isinstance(value, Real) or not 0 <= value <= 1:
        raise ValueError(f"{name} must be a share in [0, 1] ({hint}), got {name}={value!r}")


def check_non_negative(value: float, name: str, hint: str = "") -> None:
    """Raise ``ValueError`` unless ``value`` is a finite number >= 0; ``hint`` ends the message."""
    _refuse_tensor(value, name)
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value) \
            or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {name}={value!r}" +
                         (f" ({hint})" if hint else ""))


def check_count(value: int, name: str) -> None:
    """Raise ``ValueError`` unless ``value`` is a whole number >= 1 (an ``int``, not a float)."""
    _refuse_tensor(value, name)
    if isinstance(value, bool) or not isinstance(value, Integral) or value < 1:
        raise ValueError(f"{name} must be a whole number >= 1, got {name}={value!r}"
                         + (f"; pass int({name})" if isinstance(value, Real)
                            and not isinstance(value, bool) and value >= 1 else ""))
