"""Seed-to-seed statistics: mean ± std, and whether a gap exceeds the noise."""
from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Sequence


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value; NaN if a value is NaN)."""
    if not values:
        raise ValueError("values is empty: run at least one seed")
    if any(math.isnan(value) for value in values):
        return math.nan, math.nan
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def format_mean_std(values: Sequence[float]) -> str:
    """``"91.65 ± 0.27 (n=3)"``."""
    mean, std = mean_std(values)
    return f"{mean:.2f} ± {std:.2f} (n={len(values)})"


@dataclass(frozen=True)
class Gap:
    """Difference of two means, its standard error, and whether it exceeds twice the error.

    ``unjudgeable`` says why the noise cannot be estimated (one value per side, no spread, a
    NaN); such a gap never exceeds the noise.
    """

    difference: float
    standard_error: float
    unjudgeable: str | None = None

    @property
    def exceeds_noise(self) -> bool:
        return self.unjudgeable is None and abs(self.difference) > 2 * self.standard_error

    def __str__(self) -> str:
        if self.unjudgeable is not None:
            return f"{self.difference:+.2f}, cannot be judged: {self.unjudgeable}"
        verdict = "exceeds the noise" if self.exceeds_noise else "within the noise"
        return f"{self.difference:+.2f} ± {self.standard_error:.2f} (SE), {verdict}"


def _why_unjudgeable(counts: Sequence[int], difference: float, standard_error: float
                     ) -> str | None:
    """Why a gap from samples of these sizes cannot be judged, or None when it can."""
    if min(counts) < 2:
        return "one value per side, so no spread to compare with; run at least 2 seeds"
    if math.isnan(difference) or math.isnan(standard_error):
        return "a value is NaN"
    if standard_error == 0:
        return "the values do not vary from seed to seed, so there is no noise to compare with"
    return None


def gap(a: Sequence[float], b: Sequence[float]) -> Gap:
    """``mean(a) - mean(b)`` with the standard error ``sqrt(s_a²/n_a + s_b²/n_b)``."""
    (mean_a, std_a), (mean_b, std_b) = mean_std(a), mean_std(b)
    difference = mean_a - mean_b
    error = math.sqrt(std_a**2 / len(a) + std_b**2 / len(b))
    return Gap(difference, error, _why_unjudgeable((len(a), len(b)), difference, error))


def paired_gap(after: Sequence[float], before: Sequence[float]) -> Gap:
    """Mean of the per-seed differences ``after - before``, with their standard error.

    For the same runs measured twice (e.g. each student before and after fine-tuning).
    """
    if len(after) != len(before):
        raise ValueError(f"after and before must pair up seed by seed, got {len(after)} and "
                         f"{len(before)} values")
    mean, std = mean_std([a - b for a, b in zip(after, before)])
    error = std / math.sqrt(len(after))
    return Gap(mean, error, _why_unjudgeable((len(after),), mean, error))
