"""The budget windows: UTC calendar days and months, their ids, resets and limits. Pure.

A budget counter lives under its window's id (`20261231`, `202612`), so a new day or month
starts from zero without anyone resetting anything, and the old counter expires in the store
a little after its window ends (late settlements of requests that straddled midnight still
find it). Used by admission, through a `Calendar` that works the ids out once a day; the wall
clock is injected (seconds since the epoch). No I/O.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from corral.api.sharedstate import BudgetSpec, nano_usd

# How long a window's counter outlives the window: settlements arrive after the request ends.
GRACE_SECONDS = 2 * 86400


@dataclass(frozen=True, slots=True)
class Window:
    """One calendar window: its id, seconds until it ends, and how long its counter lives."""

    id: str
    reset_seconds: float

    @property
    def ttl_ms(self) -> int:
        return int((self.reset_seconds + GRACE_SECONDS) * 1000)


@dataclass(frozen=True, slots=True)
class Windows:
    day: Window
    month: Window


def windows(now: float) -> Windows:
    """The day and month containing `now` (UTC)."""
    return _Days.of(now).windows(now)


@dataclass(frozen=True, slots=True)
class _Days:
    """The day containing a moment, and the month around it: ids and bounds (epoch seconds)."""

    start: float
    end: float
    month_end: float
    day_id: str
    month_id: str

    @classmethod
    def of(cls, now: float) -> _Days:
        moment = dt.datetime.fromtimestamp(now, dt.UTC)
        midnight = dt.datetime(moment.year, moment.month, moment.day, tzinfo=dt.UTC)
        if moment.month == 12:
            next_month = dt.datetime(moment.year + 1, 1, 1, tzinfo=dt.UTC)
        else:
            next_month = dt.datetime(moment.year, moment.month + 1, 1, tzinfo=dt.UTC)
        return cls(
            start=midnight.timestamp(),
            end=(midnight + dt.timedelta(days=1)).timestamp(),
            month_end=next_month.timestamp(),
            day_id=moment.strftime("%Y%m%d"),
            month_id=moment.strftime("%Y%m"),
        )

    def windows(self, now: float) -> Windows:
        return Windows(
            day=Window(self.day_id, self.end - now),
            month=Window(self.month_id, self.month_end - now),
        )


class Calendar:
    """`windows` for a clock that moves forward (or back) a little between calls: the current
    day's ids and bounds are worked out once a day, not once a request."""

    def __init__(self) -> None:
        self._days: _Days | None = None

    def windows(self, now: float) -> Windows:
        days = self._days
        if days is None or not days.start <= now < days.end:
            days = self._days = _Days.of(now)
        return days.windows(now)


@dataclass(frozen=True, slots=True)
class Limits:
    """A budget as store integers (0 = no cap): tokens, and nano-USD."""

    tokens_day: int = 0
    tokens_month: int = 0
    cost_day: int = 0
    cost_month: int = 0

    @classmethod
    def of(cls, spec: BudgetSpec | None) -> Limits:
        if spec is None:
            return cls()
        return cls(
            tokens_day=spec.tokens_per_day or 0,
            tokens_month=spec.tokens_per_month or 0,
            cost_day=nano_usd(spec.cost_per_day) if spec.cost_per_day else 0,
            cost_month=nano_usd(spec.cost_per_month) if spec.cost_per_month else 0,
        )

    @property
    def any(self) -> bool:
        return bool(self.tokens_day or self.tokens_month or self.cost_day or self.cost_month)

    @property
    def tokens(self) -> bool:
        return bool(self.tokens_day or self.tokens_month)

    @property
    def cost(self) -> bool:
        return bool(self.cost_day or self.cost_month)
