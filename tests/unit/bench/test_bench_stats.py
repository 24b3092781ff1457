"""The statistics the benchmark reports: percentiles, spreads over runs, paired ratios."""

from __future__ import annotations

import math

import pytest
from bench import stats


def test_percentile_interpolates_between_closest_ranks_like_numpy() -> None:
    values = [4.0, 1.0, 3.0, 2.0]
    assert stats.percentile(values, 0) == 1.0
    assert stats.percentile(values, 50) == 2.5
    assert stats.percentile(values, 100) == 4.0
    assert stats.percentile(values, 99) == pytest.approx(3.97)


def test_percentile_of_nothing_is_nan_and_out_of_range_is_refused() -> None:
    assert math.isnan(stats.percentile([], 50))
    with pytest.raises(ValueError, match=r"0\.\.100"):
        stats.percentile([1.0], 101)


def test_spread_is_median_lowest_and_highest_run() -> None:
    spread = stats.Spread.of([10.0, 30.0, 20.0, 50.0, 40.0])
    assert (spread.median, spread.low, spread.high, spread.runs) == (30.0, 10.0, 50.0, 5)
    assert spread.relative == pytest.approx(20 / 30)


def test_spread_needs_a_run() -> None:
    with pytest.raises(ValueError, match="at least one run"):
        stats.Spread.of([])


def test_paired_ratios_and_differences_are_taken_run_by_run() -> None:
    assert stats.paired_ratios([2.0, 9.0], [1.0, 3.0]) == [2.0, 3.0]
    assert stats.paired_differences([2.0, 9.0], [1.0, 3.0]) == [1.0, 6.0]
    assert math.isnan(stats.ratio(1.0, 0.0))
    with pytest.raises(ValueError, match="cannot pair"):
        stats.paired_ratios([1.0], [1.0, 2.0])
