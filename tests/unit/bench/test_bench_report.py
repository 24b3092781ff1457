"""The results report: figures next to their baselines, ratios and targets."""

from __future__ import annotations

import pytest
from bench import figures, report, stats


def _latency() -> figures.Figure:
    return figures.compared(
        "Runtime, 1 worker",
        "latency p50, 1 client",
        "ms",
        [1.5, 1.6, 1.4, 1.5, 1.7],
        [0.1, 0.1, 0.1, 0.1, 0.1],
        "upstream direct",
        target=figures.at_most_added(1.0, "ms"),
    )


def test_a_compared_figure_carries_run_by_run_ratios_and_the_added_amount() -> None:
    figure = _latency()
    assert figure.ratio is not None
    assert (figure.ratio.median, figure.ratio.high) == (15.0, 17.0)
    assert figure.ratio.low == pytest.approx(14.0)
    assert figure.added is not None
    assert round(figure.added.median, 6) == 1.4
    assert figure.target == figures.Target("added <= 1 ms", met=False, measured="added 1.40 ms")


def test_a_throughput_target_is_met_at_half_the_baseline() -> None:
    figure = figures.compared(
        "s",
        "throughput",
        "req/s",
        [50.0] * 5,
        [100.0] * 5,
        "direct",
        target=figures.at_least_ratio(0.5),
    )
    assert figure.target == figures.Target(
        ">= 50% of baseline", met=True, measured="50.0% of baseline"
    )


def test_the_report_shows_median_and_range_and_lists_missed_targets_in_the_headline() -> None:
    result = figures.SuiteResult("runtime", figures=[_latency()], method="How it was measured.")
    text = report.render(
        [result],
        {"CPU": "test cpu"},
        {"python": "3.11"},
        {
            "command": "python -m bench",
            "date": "today",
            "elapsed": "1 minute",
            "load_start": "0.1",
            "load_end": "0.2",
        },
    )
    assert "| latency p50, 1 client | 1.50 ms [1.40 to 1.70] | 0.100 ms (upstream direct) |" in text
    assert "latency p50, 1 client: added 1.40 ms (added <= 1 ms: MISSED)" in text
    assert "How it was measured." in text
    assert "| CPU | test cpu |" in text


def test_numbers_keep_three_significant_figures() -> None:
    assert [report.number(v) for v in (12345.6, 42.42, 3.14159, 0.01234)] == [
        "12,346",
        "42.4",
        "3.14",
        "0.012",
    ]
    assert report.spread(stats.Spread.of([2.0]), "s") == "2.00 s"


def test_a_suite_that_could_not_finish_is_named_in_the_headline_with_its_reason() -> None:
    result = figures.SuiteResult("runtime", figures=[_latency()])
    context = {"command": "c", "date": "d", "elapsed": "e", "load_start": "0", "load_end": "0"}
    text = report.render([result], {}, {}, context, {"operator": "12 of 1000 Agents not Ready"})
    assert "- the operator suite did not finish: see below" in text
    assert "## Operator: not measured\n\n```\n12 of 1000 Agents not Ready\n```" in text


CONTEXT = {
    "command": "python -m bench --suite sharedstate --update bench/RESULTS.md",
    "date": "2026-12-01 19:00 UTC",
    "elapsed": "2.0 minutes",
    "commit": "abc1234",
    "load_start": "0.1",
    "load_end": "0.2",
}


def test_one_suite_run_alone_replaces_only_its_own_section_of_the_report() -> None:
    suite = figures.SuiteResult("shared state", figures=[_latency()])
    existing = (
        "# Results\n\n## Runtime\n\nold runtime\n\n## Shared state\n\nold\n\n## Operator\n\nx\n"
    )

    updated = report.update(existing, suite, CONTEXT)

    assert "old runtime" in updated
    assert "\nold\n" not in updated
    assert updated.index("## Shared state") < updated.index("## Operator")
    assert "Measured alone by `python -m bench --suite sharedstate" in updated
    assert "latency p50, 1 client" in updated
    added = report.update("# Results\n", suite, CONTEXT)
    assert added.startswith("# Results\n\n## Shared state\n")
