import math

import pytest

from kdutils import stats


def test_mean_std_of_known_values():
    assert stats.mean_std([1.0, 2.0, 3.0]) == pytest.approx((2.0, 1.0))
    assert stats.mean_std([5.0]) == (5.0, 0.0)
    with pytest.raises(ValueError, match="empty"):
        stats.mean_std([])


def test_format_mean_std():
    assert stats.format_mean_std([1.0, 2.0, 3.0]) == "2.00 ± 1.00 (n=3)"


def test_gap_within_and_beyond_noise():
    noisy = stats.gap([1.0, 2.0, 3.0], [1.5, 2.5, 3.5])
    assert noisy.difference == pytest.approx(-0.5) and not noisy.exceeds_noise
    clear = stats.gap([10.0, 10.1, 9.9], [9.0, 9.1, 8.9])
    assert clear.standard_error == pytest.approx((0.01 / 3 * 2) ** 0.5)
    assert clear.exceeds_noise and "exceeds the noise" in str(clear)


def test_paired_gap_uses_per_seed_differences():
    result = stats.paired_gap([71.0, 73.0, 75.0], [70.0, 72.0, 73.0])
    assert result.difference == pytest.approx(4 / 3)
    assert result.standard_error == pytest.approx(math.sqrt(1 / 3) / math.sqrt(3))
    assert result.exceeds_noise
    assert not stats.gap([71.0, 73.0, 75.0], [70.0, 72.0, 73.0]).exceeds_noise
    with pytest.raises(ValueError, match="pair up"):
        stats.paired_gap([1.0], [1.0, 2.0])


@pytest.mark.parametrize("a, b, reason", [
    ([91.0], [90.0], "one value per side"),
    ([91.0, 91.0], [90.0, 90.0], "do not vary"),
    ([91.0, float("nan")], [90.0, 90.5], "NaN"),
])
def test_gap_that_cannot_be_judged_says_so(a, b, reason):
    result = stats.gap(a, b)
    assert not result.exceeds_noise
    assert "cannot be judged" in str(result) and reason in str(result)


def test_paired_gap_of_one_seed_or_constant_differences_cannot_be_judged():
    assert "one value" in str(stats.paired_gap([71.0], [70.0]))
    constant = stats.paired_gap([71.0, 72.0, 73.0], [70.0, 71.0, 72.0])
    assert not constant.exceeds_noise and "cannot be judged" in str(constant)


def test_format_mean_std_with_nan_does_not_crash():
    assert stats.format_mean_std([1.0, float("nan"), 3.0]) == "nan ± nan (n=3)"
