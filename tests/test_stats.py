import math

import pytest

from kdutils.analysis import stats


def test_mean_std_of_known_values():
    assert stats.mean_std([1.0, 2.0, 3.0]) == pytest.approx((2.0, 1.0))
    assert stats.mean_std([5.0]) == (5.0, 0.0)
    with pytest.raises(ValueError, match="empty"):
        stats.mean_std([])


def test_format_mean_std():
    assert stats.format_mean_std([1.0, 2.0, 3.0]) == "2.00 ± 1.00 (n=3)"


T_975_DF2 = 4.302652729911275  # Student's t, 97.5% point, 2 degrees of freedom (tables)


def test_paired_gap_is_a_paired_t_interval_with_n_minus_1_degrees_of_freedom():
    result = stats.paired_gap([71.0, 73.0, 75.0], [70.0, 72.0, 73.0])  # differences 1, 1, 2
    error = math.sqrt(1 / 3) / math.sqrt(3)
    assert result.difference == pytest.approx(4 / 3)
    assert result.standard_error == pytest.approx(error)
    assert (result.low, result.high) == pytest.approx((4 / 3 - T_975_DF2 * error,
                                                       4 / 3 + T_975_DF2 * error))
    assert not result.exceeds_noise  # twice the standard error would have called it real
    assert abs(result.difference) > 2 * result.standard_error
    assert str(result) == "+1.33 [-0.10, +2.77] (95% CI, paired, n=3), unresolved (the interval includes 0)"
    with pytest.raises(ValueError, match="pair up"):
        stats.paired_gap([1.0], [1.0, 2.0])


def test_pairing_by_seed_resolves_what_independent_samples_cannot():
    alone, distilled = [69.0, 70.0, 71.0], [69.5, 70.6, 71.4]  # seed noise shared by both
    assert stats.paired_gap(distilled, alone).exceeds_noise
    assert not stats.gap(distilled, alone).exceeds_noise


def test_gap_is_welchs_interval():
    clear = stats.gap([10.0, 10.1, 9.9], [9.0, 9.1, 8.9])
    error = (0.01 / 3 * 2) ** 0.5
    assert clear.standard_error == pytest.approx(error)
    # equal variances and sizes: Welch's degrees of freedom are 2(n - 1) = 4
    assert clear.high - clear.difference == pytest.approx(2.7764451051977987 * error)
    assert clear.exceeds_noise and "excludes 0" in str(clear) and "Welch, n=3 and 3" in str(clear)
    assert clear.p_value < 0.05


@pytest.mark.parametrize("a, b, reason", [
    ([91.0], [90.0], "one value per side"),
    ([91.0, 91.0], [90.0, 90.0], "do not vary"),
    ([91.0, float("nan")], [90.0, 90.5], "NaN"),
])
def test_gap_that_cannot_be_judged_says_so(a, b, reason):
    result = stats.gap(a, b)
    assert not result.exceeds_noise and math.isnan(result.low)
    assert "cannot be judged" in str(result) and reason in str(result)


def test_paired_gap_of_one_seed_or_constant_differences_cannot_be_judged():
    assert "one value" in str(stats.paired_gap([71.0], [70.0]))
    constant = stats.paired_gap([71.0, 72.0, 73.0], [70.0, 71.0, 72.0])
    assert not constant.exceeds_noise and "cannot be judged" in str(constant)


def test_format_mean_std_with_nan_does_not_crash():
    assert stats.format_mean_std([1.0, float("nan"), 3.0]) == "nan ± nan (n=3)"


def test_tensors_arrays_and_numpy_scalars_are_numbers_too():
    """Issue 27: paired_gap of tensors was refused."""
    import numpy as np
    import torch
    after, before = [91.0, 92.5, 90.0], [90.0, 91.0, 89.5]
    expected = stats.paired_gap(after, before)
    assert stats.paired_gap(torch.tensor(after), torch.tensor(before)) == expected
    assert stats.paired_gap(np.array(after), [torch.tensor(v) for v in before]) == expected
    assert stats.mean_interval(torch.tensor(after)) == stats.mean_interval(after)
    with pytest.raises(ValueError, match="after must be numbers, one per seed"):
        stats.paired_gap(torch.zeros(3, 2), before)


def test_a_gap_formatted_for_a_table_is_short_and_starred_when_resolved():
    resolved = stats.paired_gap([3.0, 4.0, 5.0], [1.0, 1.5, 2.0])
    unresolved = stats.paired_gap([1.0, 2.0, 3.0], [2.0, 1.0, 3.0])
    assert f"{resolved:.1f}" == (f"{resolved.difference:+.1f} [{resolved.low:+.1f}, "
                                 f"{resolved.high:+.1f}]*")
    assert f"{unresolved:.2f}".endswith("] ")
    assert f"{resolved}" == str(resolved)
    assert f"{stats.paired_gap([1.0], [2.0]):.1f}" == "-1.0 (cannot be judged)"
