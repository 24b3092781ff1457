"""Requests-per-minute and tokens-per-minute limits per caller, as token buckets.

Each caller (an API key, or the whole agent when auth is off) has one bucket per limit that
refills continuously at limit/60 per second up to the limit. `admit` takes one request and the
request's whole token reservation (prompt estimate + completion limit) at once, or neither, so
concurrent requests can never together be admitted past the limit; `settle` later swaps the
reservation for the real usage (a refund, or debt that the next requests wait out). The state
is per process: N replicas admit up to N times the limit (`admission` shares it through the
state store instead, when the Agent has one). Runs on the event loop without
awaiting between check and take, so it needs no lock. Called by the serving layer; pure (the
clock is injected).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from corral.api.agents import RateLimitSpec
from corral.runtime import errors

Clock = Callable[[], float]


@dataclass(slots=True)
class Bucket:
    """Continuously refilling allowance: `level` units now, `limit` at most, limit/60 per s."""

    limit: int
    level: float
    stamp: float

    @property
    def rate(self) -> float:
        return self.limit / 60.0

    def refill(self, now: float) -> None:
        self.level = min(float(self.limit), self.level + (now - self.stamp) * self.rate)
        self.stamp = now

    def wait_for(self, amount: float) -> float:
        """Seconds until `amount` units are available (0 when they are now)."""
        return max(0.0, (amount - self.level) / self.rate)

    def until_full(self) -> float:
        return max(0.0, (self.limit - self.level) / self.rate)


@dataclass(slots=True)
class Reservation:
    """What one admitted request holds; `headers` are the x-ratelimit-* to answer with."""

    caller: str
    tokens: int
    headers: dict[str, str] = field(default_factory=dict)
    settled: bool = False


class RateLimiter:
    """The limits of one agent; `spec` None (or with no limits set) admits everything."""

    def __init__(self, spec: RateLimitSpec | None, clock: Clock = time.monotonic) -> None:
        self._rpm = spec.requests_per_minute if spec else None
        self._tpm = spec.tokens_per_minute if spec else None
        self._clock = clock
        self._requests: dict[str, Bucket] = {}
        self._tokens: dict[str, Bucket] = {}

    @property
    def limits_tokens(self) -> bool:
        return self._tpm is not None

    def admit(self, caller: str, tokens: int, count: int = 1) -> Reservation:
        """Take `count` requests (one, or none for a later turn of a request) and `tokens`
        tokens for `caller`, or raise RateLimited.
        Raises PayloadTooLarge when `tokens` exceeds the whole per-minute token limit."""
        if self._rpm is None and self._tpm is None:
            return Reservation(caller, 0)
        now = self._clock()
        requests = self._bucket(self._requests, self._rpm, caller, now)
        budget = self._bucket(self._tokens, self._tpm, caller, now)
        if budget is not None and tokens > budget.limit:
            raise errors.PayloadTooLarge(
                f"this request may use ~{tokens} tokens (prompt estimate + max_tokens), more than"
                f" the limit of {budget.limit} tokens per minute; lower max_tokens or shorten it",
                param="max_tokens",
            )
        waits = {
            "requests": requests.wait_for(count) if requests else 0.0,
            "tokens": budget.wait_for(tokens) if budget else 0.0,
        }
        kind = max(waits, key=lambda k: waits[k])
        if waits[kind] > 0:
            headers = self._headers(requests, budget)
            headers["retry-after"] = str(max(1, math.ceil(waits[kind])))
            headers["retry-after-ms"] = str(max(1, math.ceil(waits[kind] * 1000)))
            empty = requests if kind == "requests" else budget
            limit = empty.limit if empty else 0
            raise errors.RateLimited(
                f"rate limit reached: {limit} {kind} per minute for this caller;"
                f" retry in {waits[kind]:.1f}s",
                kind=kind,
                headers=headers,
            )
        if requests:
            requests.level -= count
        if budget:
            budget.level -= tokens
        return Reservation(caller, tokens if budget else 0, self._headers(requests, budget))

    def settle(self, reservation: Reservation, used_tokens: int) -> None:
        """Replace the reservation by the tokens really used (once per reservation)."""
        if reservation.settled or self._tpm is None:
            return
        reservation.settled = True
        budget = self._tokens.get(reservation.caller)
        if budget is None:
            return
        budget.refill(self._clock())
        budget.level = min(float(budget.limit), budget.level + reservation.tokens - used_tokens)

    def _bucket(
        self, table: dict[str, Bucket], limit: int | None, caller: str, now: float
    ) -> Bucket | None:
        if limit is None:
            return None
        bucket = table.get(caller)
        if bucket is None:
            bucket = table[caller] = Bucket(limit, float(limit), now)
        else:
            bucket.refill(now)
        return bucket

    @staticmethod
    def _headers(requests: Bucket | None, budget: Bucket | None) -> dict[str, str]:
        headers: dict[str, str] = {}
        for kind, bucket in (("requests", requests), ("tokens", budget)):
            if bucket is None:
                continue
            headers[f"x-ratelimit-limit-{kind}"] = str(bucket.limit)
            headers[f"x-ratelimit-remaining-{kind}"] = str(max(0, math.floor(bucket.level)))
            headers[f"x-ratelimit-reset-{kind}"] = duration(bucket.until_full())
        return headers


def duration(seconds: float) -> str:
    """OpenAI's reset format: `20ms`, `1.5s`, `6m0s`."""
    if seconds < 1:
        return f"{math.ceil(seconds * 1000)}ms"
    if seconds < 60:
        return f"{seconds:.3g}s" if seconds < 10 else f"{math.ceil(seconds)}s"
    minutes, rest = divmod(math.ceil(seconds), 60)
    return f"{minutes}m{rest}s"
