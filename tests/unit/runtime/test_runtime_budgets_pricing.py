"""Budget windows (UTC days and months) and what model calls cost, in integer nano-dollars."""

from __future__ import annotations

import datetime as dt

import pytest

from corral.api.runtimeconfig import ModelEndpoint
from corral.api.sharedstate import BudgetSpec, nano_usd
from corral.runtime import budgets, pricing
from corral.runtime.providers.base import Usage


def at(when: str) -> float:
    return dt.datetime.fromisoformat(when).timestamp()


def test_a_window_is_the_utc_day_and_month_whatever_the_local_offset() -> None:
    windows = budgets.windows(at("2026-01-31T23:59:30-01:00"))  # 00:59:30 UTC on Feb 1

    assert (windows.day.id, windows.month.id) == ("20260201", "202602")
    assert windows.day.reset_seconds == 23 * 3600 + 30
    assert windows.day.ttl_ms > windows.day.reset_seconds * 1000


@pytest.mark.parametrize(
    ("when", "month", "reset"),
    [
        ("2026-12-31T23:00:00+00:00", "202612", 3600),  # the year rolls over too
        ("2028-02-28T00:00:00+00:00", "202802", 2 * 86400),  # a leap February
    ],
)
def test_a_month_ends_at_the_first_of_the_next(when: str, month: str, reset: float) -> None:
    windows = budgets.windows(at(when))

    assert (windows.month.id, windows.month.reset_seconds) == (month, reset)


def test_budget_amounts_become_exact_integers() -> None:
    limits = budgets.Limits.of(BudgetSpec(tokens_per_day=5, cost_per_month="500.000001"))

    assert limits == budgets.Limits(tokens_day=5, cost_month=500_000_001_000)
    assert nano_usd("0.1") == 100_000_000
    assert (limits.tokens, limits.cost, limits.any) == (True, True, True)


def test_a_call_is_priced_by_the_model_that_answered_and_reserved_at_the_dearest() -> None:
    cheap = ModelEndpoint.model_validate(
        {"provider": "openai", "name": "cheap",
         "pricing": {"promptPerMillion": "0.15", "completionPerMillion": "0.60"}}
    )  # fmt: skip
    dear = ModelEndpoint.model_validate(
        {"provider": "gemini", "name": "dear",
         "pricing": {"promptPerMillion": "1.25", "completionPerMillion": "10"}}
    )  # fmt: skip
    prices = pricing.Prices([cheap, dear])

    assert prices.cost("openai", "cheap", Usage(1_000_000, 1_000_000)) == 750_000_000
    assert prices.cost("openai", "cheap", Usage(1, 0)) == 150
    assert prices.cost("openai", "unknown", Usage(10, 10)) == 0
    assert prices.bound(1000, 100) == 1000 * 1250 + 100 * 10_000
    assert pricing.usd(750_000_000) == "0.750000"


def test_the_calendar_gives_the_windows_of_each_moment_across_day_and_month_ends() -> None:
    calendar = budgets.Calendar()
    moments = [
        at("2026-12-31T23:59:59+00:00"),
        at("2026-12-31T23:59:59.999+00:00"),
        at("2027-01-01T00:00:00+00:00"),  # a new day, month and year
        at("2027-01-01T00:00:00.5+00:00"),
        at("2026-12-31T23:59:58+00:00"),  # a clock stepped back
        at("2027-01-31T12:00:00+00:00"),
        at("2027-02-01T00:00:00+00:00"),
    ]

    for moment in moments:
        assert calendar.windows(moment) == budgets.windows(moment), moment
