"""The measured figures of a benchmark run: each one next to its baseline, as a ratio, with
its target when the issue sets one. Pure data; the suites make them, the report prints them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bench import stats


@dataclass(frozen=True)
class Target:
    """A goal for one figure: `text` says it in words, `met` whether this run reached it,
    `measured` what this run measured against it (for the headline)."""

    text: str
    met: bool
    measured: str = ""


def number(value: float) -> str:
    """A measurement with 3 significant figures at most (thousands separated)."""
    if math.isnan(value):
        return "n/a"
    size = abs(value)
    if size >= 100:
        return f"{value:,.0f}"
    if size >= 10:
        return f"{value:.1f}"
    if size >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


@dataclass(frozen=True)
class Figure:
    """One line of the results: the measurement over its runs, and how it compares."""

    section: str
    name: str
    unit: str
    value: stats.Spread
    baseline: stats.Spread | None = None
    baseline_name: str = ""
    ratio: stats.Spread | None = None
    added: stats.Spread | None = None
    target: Target | None = None
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        def spread(s: stats.Spread | None) -> dict[str, float] | None:
            if s is None:
                return None
            return {"median": s.median, "low": s.low, "high": s.high, "runs": s.runs}

        return {
            "section": self.section,
            "name": self.name,
            "unit": self.unit,
            "value": spread(self.value),
            "baseline": spread(self.baseline),
            "baseline_name": self.baseline_name,
            "ratio": spread(self.ratio),
            "added": spread(self.added),
            "target": None if self.target is None else vars(self.target),
            "note": self.note,
        }


def compared(
    section: str,
    name: str,
    unit: str,
    values: list[float],
    baselines: list[float],
    baseline_name: str,
    *,
    target: Callable[[Figure], Target] | None = None,
    note: str = "",
    with_added: bool = True,
) -> Figure:
    """A figure over paired runs: run i of `values` was measured right after run i of
    `baselines`, so ratios and differences are taken run by run. `with_added` False leaves
    out the difference where it means nothing (throughput)."""
    figure = Figure(
        section=section,
        name=name,
        unit=unit,
        value=stats.Spread.of(values),
        baseline=stats.Spread.of(baselines),
        baseline_name=baseline_name,
        ratio=_spread_or_none(stats.paired_ratios(values, baselines)),
        added=(
            stats.Spread.of(stats.paired_differences(values, baselines)) if with_added else None
        ),
        note=note,
    )
    if target is None:
        return figure
    return _with_target(figure, target(figure))


def _spread_or_none(values: list[float]) -> stats.Spread | None:
    finite = [v for v in values if not math.isnan(v)]
    return stats.Spread.of(finite) if finite else None


def _with_target(figure: Figure, target: Target) -> Figure:
    return Figure(**{**vars(figure), "target": target})


def at_most_added(limit: float, unit: str) -> Callable[[Figure], Target]:
    """Target: the median added amount (value minus baseline) is at most `limit`."""

    def check(figure: Figure) -> Target:
        assert figure.added is not None
        added = figure.added.median
        return Target(f"added <= {limit:g} {unit}", added <= limit, f"added {number(added)} {unit}")

    return check


def at_least_ratio(limit: float) -> Callable[[Figure], Target]:
    """Target: the median ratio to the baseline is at least `limit`."""

    def check(figure: Figure) -> Target:
        share = figure.ratio.median if figure.ratio is not None else math.nan
        return Target(f">= {limit:.0%} of baseline", share >= limit, f"{share:.1%} of baseline")

    return check


@dataclass
class SuiteResult:
    """What one suite hands to the report: its figures, notes and the raw runs."""

    name: str
    figures: list[Figure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict)
    method: str = ""
