"""Seed-to-seed statistics: mean ± std, and differences with their 95% confidence interval.

A difference is judged by Student's t distribution (``scipy.stats``): paired by seed when the
runs of a seed start from the same weights (:func:`paired_gap`), Welch's unequal-variance test
otherwise (:func:`gap`). With 3 seeds the interval is wide (t's 97.5% point with 2 degrees of
freedom is 4.30, against 1.96 for many seeds), so only large effects resolve.
"""
from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from scipy import stats as scipy_stats

def as_numbers(values: Any, name: str = "values") -> list[float]:
    """``values`` as Python floats: a sequence of numbers, a 1-D tensor or array, or numbers
    that are 0-d tensors or numpy scalars."""
    if hasattr(values, "tolist") and getattr(values, "ndim", 1) == 1:
        values = values.tolist()  # tensors and numpy arrays
    try:
        return [float(value) for value in values]
    except (TypeError, ValueError, RuntimeError):
        raise ValueError(f"{name} must be numbers, one per seed (a list, a 1-D tensor or "
                         f"array), got {values!r}") from None


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value; NaN if a value is NaN)."""
    values = as_numbers(values)
    if not values:
        raise ValueError("values is empty: run at least one seed")
    if any(math.isnan(value) for value in values):
        return math.nan, math.nan
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def mean_interval(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float, float]:
    """The mean and its t-interval ``(mean, low, high)``; a single value is its own interval."""
    values = as_numbers(values)
    mean, std = mean_std(values)
    if len(values) < 2 or std == 0:
        return mean, mean, mean
    low, high = scipy_stats.t.interval(confidence, len(values) - 1, loc=mean,
                                       scale=std / math.sqrt(len(values)))
    return mean, float(low), float(high)


def format_mean_std(values: Sequence[float]) -> str:
    """``"91.65 ± 0.27 (n=3)"``."""
    mean, std = mean_std(values)
    return f"{mean:.2f} ± {std:.2f} (n={len(values)})"


@dataclass(frozen=True)
class Gap:
    """A difference, its standard error, and its confidence interval from a t-test.

    ``exceeds_noise`` when the interval excludes 0. ``unjudgeable`` says why the noise cannot be
    estimated (one value per side, no spread, a NaN); such a gap never exceeds the noise.
    """

    difference: float
    standard_error: float
    low: float
    high: float
    p_value: float
    test: str  # "paired, n=3" or "Welch, n=3 and 3"
    confidence: float = 0.95
    unjudgeable: str | None = None

    @property
    def exceeds_noise(self) -> bool:
        return self.unjudgeable is None and (self.low > 0 or self.high < 0)

    def __format__(self, spec: str) -> str:
        """``f"{gap:.1f}"`` is the short form for tables, ``+4.6 [-0.1, +9.3]``, with a ``*``
        when the interval excludes 0 (a space when it does not); no spec gives ``str(gap)``."""
        if not spec:
            return str(self)
        if self.unjudgeable is not None:
            return f"{self.difference:+{spec}} (cannot be judged)"
        mark = "*" if self.exceeds_noise else " "
        return f"{self.difference:+{spec}} [{self.low:+{spec}}, {self.high:+{spec}}]{mark}"

    def __str__(self) -> str:
        if self.unjudgeable is not None:
            return f"{self.difference:+.2f}, cannot be judged: {self.unjudgeable}"
        verdict = "excludes 0" if self.exceeds_noise else "unresolved (the interval includes 0)"
        return (f"{self.difference:+.2f} [{self.low:+.2f}, {self.high:+.2f}] "
                f"({self.confidence:.0%} CI, {self.test}), {verdict}")


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


def _judged(difference: float, error: float, counts: Sequence[int], test: str,
            run_test: Callable[[], Any], confidence: float) -> Gap:
    """The Gap from the scipy t-test that ``run_test`` runs, or an unjudgeable one that says why."""
    reason = _why_unjudgeable(counts, difference, error)
    if reason is not None:
        return Gap(difference, error, math.nan, math.nan, math.nan, test, confidence, reason)
    result = run_test()
    interval = result.confidence_interval(confidence)
    return Gap(difference, error, float(interval.low), float(interval.high),
               float(result.pvalue), test, confidence)


def gap(a: Sequence[float], b: Sequence[float], confidence: float = 0.95) -> Gap:
    """``mean(a) - mean(b)`` for independent samples: Welch's t-test and its interval.

    Use :func:`paired_gap` when ``a[i]`` and ``b[i]`` come from the same seed.
    """
    a, b = as_numbers(a, "a"), as_numbers(b, "b")
    (mean_a, std_a), (mean_b, std_b) = mean_std(a), mean_std(b)
    error = math.sqrt(std_a**2 / len(a) + std_b**2 / len(b))
    return _judged(mean_a - mean_b, error, (len(a), len(b)), f"Welch, n={len(a)} and {len(b)}",
                   lambda: scipy_stats.ttest_ind(a, b, equal_var=False), confidence)


def paired_gap(after: Sequence[float], before: Sequence[float], confidence: float = 0.95) -> Gap:
    """Mean of the per-seed differences ``after - before``: a paired t-test and its interval.

    For runs paired by seed: students that start from the same weights, or the same runs
    measured twice (each student before and after fine-tuning). The t distribution has
    ``n - 1`` degrees of freedom.
    """
    after, before = as_numbers(after, "after"), as_numbers(before, "before")
    if len(after) != len(before):
        raise ValueError(f"after and before must pair up seed by seed, got {len(after)} and "
                         f"{len(before)} values")
    mean, std = mean_std([a - b for a, b in zip(after, before)])
    error = std / math.sqrt(len(after))
    return _judged(mean, error, (len(after),), f"paired, n={len(after)}",
                   lambda: scipy_stats.ttest_rel(after, before), confidence)
