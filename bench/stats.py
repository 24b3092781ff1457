"""Statistics of benchmark samples: percentiles, median and spread over runs, ratios. Pure.

Called by the load generator (per-request percentiles), the suites (per-figure summaries over
repeated runs) and the report. No I/O.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) with linear interpolation between closest ranks, as
    numpy's default; NaN for no values."""
    if not 0 <= q <= 100:
        raise ValueError(f"percentile must be within 0..100, not {q}")
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass(frozen=True)
class Spread:
    """One figure over repeated runs: the median and the lowest and highest run."""

    median: float
    low: float
    high: float
    runs: int

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        if not values:
            raise ValueError("a spread needs at least one run")
        return cls(percentile(values, 50), min(values), max(values), len(values))

    @property
    def relative(self) -> float:
        """Half the range as a fraction of the median (0 for a single run or a zero median)."""
        if self.median == 0:
            return 0.0
        return (self.high - self.low) / 2 / abs(self.median)


def ratio(value: float, baseline: float) -> float:
    """value / baseline; NaN when the baseline is zero or either is NaN."""
    if baseline == 0 or math.isnan(value) or math.isnan(baseline):
        return math.nan
    return value / baseline


def paired_ratios(values: Sequence[float], baselines: Sequence[float]) -> list[float]:
    """Run-by-run ratios of paired measurements (run i of each was taken back to back)."""
    if len(values) != len(baselines):
        raise ValueError(f"{len(values)} runs cannot pair with {len(baselines)} baseline runs")
    return [ratio(v, b) for v, b in zip(values, baselines, strict=True)]


def paired_differences(values: Sequence[float], baselines: Sequence[float]) -> list[float]:
    """Run-by-run differences of paired measurements (e.g. the latency the runtime adds)."""
    if len(values) != len(baselines):
        raise ValueError(f"{len(values)} runs cannot pair with {len(baselines)} baseline runs")
    return [v - b for v, b in zip(values, baselines, strict=True)]
