"""Seed-to-seed statistics: mean ± std, and whether a gap exceeds the noise."""
from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Sequence


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    if not values:
        raise ValueError("values is empty: run at least one seed")
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def format_mean_std(values: Sequence[float]) -> str:
    """``"91.65 ± 0.27 (n=3)"``."""
    mean, std = mean_std(values)
    return f"{mean:.2f} ± {std:.2f} (n={len(values)})"


@dataclass(frozen=True)
class Gap:
    """Difference of two means, its standard error, and whether it exceeds twice the error."""

    difference: float
    standard_error: float

    @property
    def exceeds_noise(self) -> bool:
        return abs(self.difference) > 2 * self.standard_error

    def __str__(self) -> str:
        verdict = "exceeds the noise" if self.exceeds_noise else "within the noise"
        return f"{self.difference:+.2f} ± {self.standard_error:.2f} (SE), {verdict}"


def gap(a: Sequence[float], b: Sequence[float]) -> Gap:
    """``mean(a) - mean(b)`` with the standard error ``sqrt(s_a²/n_a + s_b²/n_b)``."""
    (mean_a, std_a), (mean_b, std_b) = mean_std(a), mean_std(b)
    return Gap(mean_a - mean_b, math.sqrt(std_a**2 / len(a) + std_b**2 / len(b)))


def paired_gap(after: Sequence[float], before: Sequence[float]) -> Gap:
    """Mean of the per-seed differences ``after - before``, with their standard error.

    For the same runs measured twice (e.g. each student before and after fine-tuning).
    """
    if len(after) != len(before):
        raise ValueError(f"after and before must pair up seed by seed, got {len(after)} and "
                         f"{len(before)} values")
    mean, std = mean_std([a - b for a, b in zip(after, before)])
    return Gap(mean, std / math.sqrt(len(after)))
