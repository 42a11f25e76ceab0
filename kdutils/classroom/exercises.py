"""Check cells for the exercises: say whether a student's answer is right without showing it.

A numeric answer is compared through a digest of its rounded value, so the notebook holds no
readable answer. Instructors make a digest with :func:`answer_digest` from the solution's value.
"""
from __future__ import annotations

import hashlib
import math
from numbers import Real


def answer_digest(value: float, digits: int) -> str:
    """A short sha256 of ``value`` rounded to ``digits`` decimals (``-0.0`` counts as ``0.0``)."""
    rounded = round(float(value), digits) + 0.0
    return hashlib.sha256(f"{rounded:.{digits}f}".encode()).hexdigest()[:16]


def check_answer(value: float, digest: str, digits: int) -> None:
    """Print whether ``value`` (a number: also a numpy scalar or a one-value tensor) rounds to
    the answer behind ``digest``."""
    if hasattr(value, "item") and getattr(value, "ndim", None) == 0:
        value = value.item()  # a 0-d tensor or numpy scalar
    if not isinstance(value, Real) or isinstance(value, bool) or math.isnan(value):
        print(f"not checked: give a number, got {value!r}")
    elif answer_digest(value, digits) == digest:
        print("right.")
    else:
        print(f"not yet: {value:.{digits}f} is not the answer (to {digits} decimals); check "
              f"your reasoning and try again")
