"""Admission: what a model turn may spend, decided before it calls, settled after it answers.

Every model turn reserves first: the request's first turn one request plus its prompt
estimate and completion bound (tokens, and their cost at the dearest model's price), each
later tool-loop turn its tokens and cost alone. The reservation is checked against the rate
limits and every budget at once; after the turn, `settle` swaps it for the real usage (for a
stream when it ends or breaks). Without a state store the per-replica `RateLimiter` decides
(no budgets: the API requires a store for them), synchronously, as before. With one, a
single script per check decides for all replicas: the ticket id makes a retried admit or
settle count once, and settles are sent in the background (`settlements`: batched, retried
until they land). What every call of the Agent shares (its limits, a caller's keys for the
current day and month) is framed for the store once, not per request. While the store is
unreachable, `FailClosed` answers 503 and `FailOpen` falls back to the per-replica limiter (no
budget), with a metric and a log line when it starts and stops.
Called by the serving layer; network I/O only through `statestore`.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from corral.api.runtimeconfig import RuntimeConfig
from corral.runtime import budgets, errors, pricing, ratelimit, settlements, statestore
from corral.runtime import storescripts as scripts
from corral.runtime.auth import Principal

log = logging.getLogger(__name__)

Clock = Callable[[], float]
# A ticket outlives the longest request by this much, so that late settles still find it.
TICKET_GRACE_SECONDS = 120
# Callers whose keys are kept framed, at most (then the cache starts again).
MAX_CALLERS = 4096
BUDGET_KINDS = {
    "tokens_day": ("tokens", "day"),
    "tokens_month": ("tokens", "month"),
    "cost_day": ("cost", "day"),
    "cost_month": ("cost", "month"),
}


@dataclass(slots=True)
class Ticket:
    """What one model turn holds; `headers` are the x-ratelimit-* and budget headers."""

    tokens: int
    cost: int
    headers: dict[str, str] = field(default_factory=dict)
    local: ratelimit.Reservation | None = None
    keys: bytes | None = None  # the store keys charged, framed, the ticket's own key last
    settled: bool = False


@dataclass(frozen=True, slots=True)
class Observers:
    """Where admission reports: budget refusals, spend, fallbacks, the store's state (429s of
    the rate limits are counted by the caller, for both limiters alike)."""

    budget_rejected: Callable[[str, str], None] = lambda kind, window: None
    spent: Callable[[int], None] = lambda nano: None
    fallback: Callable[[], None] = lambda: None
    store_up: Callable[[bool], None] = lambda up: None


class Admission:
    """The limits and budgets of one Agent, local or shared."""

    def __init__(
        self,
        config: RuntimeConfig,
        limiter: ratelimit.RateLimiter,
        store: statestore.Store | None,
        prices: pricing.Prices,
        *,
        wall_clock: Clock = time.time,
        observers: Observers | None = None,
    ) -> None:
        self._limiter = limiter
        self._store = store
        self._prices = prices
        self._wall = wall_clock
        self._seen = observers or Observers()
        rate = config.rate_limit
        self._rpm = (rate.requests_per_minute or 0) if rate else 0
        self._tpm = (rate.tokens_per_minute or 0) if rate else 0
        self._budget = budgets.Limits.of(config.budget)
        self._fail_open = (
            config.state_store is not None and config.state_store.failure_policy == "FailOpen"
        )
        self._shared = store is not None and bool(self._rpm or self._tpm or self._budget.any)
        self._store_down = False
        self._settlements = settlements.Settlements(store) if store is not None else None
        # Framed once: the Agent's limits as the scripts take them, and per caller its keys.
        budget = self._budget
        ticket_ttl_ms = int((config.request_timeout_seconds + TICKET_GRACE_SECONDS) * 1000)
        self._admit_limits = scripts.Bulks.of(
            self._rpm, self._tpm, budget.tokens_day, budget.tokens_month, budget.cost_day,
            budget.cost_month, ticket_ttl_ms,
        ).data  # fmt: skip
        self._settle_limits = scripts.Bulks.of(self._rpm, self._tpm).data
        self._calendar = budgets.Calendar()
        self._callers: dict[tuple[str, str, str], tuple[bytes, str]] = {}
        # Ticket ids: unique across replicas and restarts without a uuid per request.
        self._ticket_ids = itertools.count()
        self._ticket_nonce = secrets.token_hex(8)
        self._rate_headers = [
            (kind, limit, str(limit), index)
            for index, (kind, limit) in enumerate((("requests", self._rpm), ("tokens", self._tpm)))
            if limit
        ]
        self._budget_headers = [
            (name, limit, index, name.split("-")[1] == "day", name.startswith("cost"))
            for index, (name, limit) in enumerate(
                (
                    ("tokens-day", budget.tokens_day),
                    ("tokens-month", budget.tokens_month),
                    ("cost-day", budget.cost_day),
                    ("cost-month", budget.cost_month),
                ),
                start=2,
            )
            if limit
        ]

    @property
    def limits_tokens(self) -> bool:
        """Whether turns must have a completion bound (a token limit or any budget applies)."""
        return self._limiter.limits_tokens or self._budget.any

    @property
    def prices(self) -> pricing.Prices:
        return self._prices

    async def admit(
        self, principal: Principal, tokens: int, cost: int, *, request: bool = True
    ) -> Ticket:
        """Reserve one turn (and the request itself when `request`), or raise RateLimited,
        BudgetExceeded, PayloadTooLarge or (FailClosed, store down) StoreUnavailable."""
        if not request and not self.limits_tokens:
            return Ticket(0, 0)  # a later turn with only a request limit: nothing to take
        if not self._shared:
            return self._admit_local(principal, tokens, cost, request)
        self._refuse_oversized(tokens, cost)
        now = self._wall()
        windows = self._calendar.windows(now)
        keys = self._keys(principal.digest, windows)
        call = scripts.Call.framed(
            scripts.ADMIT,
            keys
            + self._admit_limits
            + scripts.bulk(repr(now))
            + scripts.bulk(int(request))
            + scripts.bulk(tokens)
            + scripts.bulk(cost)
            + scripts.bulk(windows.day.ttl_ms)
            + scripts.bulk(windows.month.ttl_ms),
        )
        was_up = not self._store_down
        try:
            reply = await self._admit_shared(call, again=was_up)
        except statestore.Unavailable as err:
            if was_up:
                # The store went away during this call: the script may have run with its reply
                # lost, so give back whatever it took. (Once the store is known to be down,
                # calls fail before sending anything.)
                self._send_settle(keys, 0, 0, release=True)
            return self._unavailable(err, principal, tokens, cost, request)
        except asyncio.CancelledError:
            # The request was given up (its client left) during the call: the script may
            # have run, and no one will settle its ticket: give back whatever it took.
            self._send_settle(keys, 0, 0, release=True)
            raise
        self._store_reachable()
        fields = reply.split(b" ")
        admitted, failing = fields[0] == b"1", fields[1].decode()
        levels = [float(v) for v in fields[2:]]
        headers = self._headers(levels, windows)
        if not admitted:
            self._refuse(failing.split(","), levels, tokens, request, windows, headers)
        return Ticket(tokens, cost, headers, keys=keys)

    def settle(self, ticket: Ticket, tokens: int, cost: int, *, served: bool = True) -> None:
        """Swap the ticket's reservation for the real usage, once; never raises. A shared
        ticket is settled in the background (awaitable through `settled`)."""
        if ticket.settled:
            return
        ticket.settled = True
        if cost:
            self._seen.spent(cost)
        if ticket.local is not None:
            self._limiter.settle(ticket.local, tokens)
        if ticket.keys is not None:
            self._send_settle(ticket.keys, tokens, cost, release=not served)

    async def settled(self) -> None:
        """Wait until every settle started so far has landed (or given up)."""
        if self._settlements is not None:
            await self._settlements.landed()

    async def aclose(self) -> None:
        """Wait a little for pending settles (the store may be down), then drop them."""
        if self._settlements is not None:
            await self._settlements.aclose()

    # -- local ---------------------------------------------------------------------------------

    def _admit_local(self, principal: Principal, tokens: int, cost: int, request: bool) -> Ticket:
        reservation = self._limiter.admit(principal.id, tokens, count=int(request))
        return Ticket(tokens, cost, reservation.headers, local=reservation)

    def _unavailable(
        self,
        err: statestore.Unavailable,
        principal: Principal,
        tokens: int,
        cost: int,
        request: bool,
    ) -> Ticket:
        if not self._store_down:
            self._store_down = True
            self._seen.store_up(False)
            policy = (
                "FailOpen: serving under per-replica limits, no budget"
                if (self._fail_open)
                else "FailClosed: answering 503 until it is back"
            )
            log.error("state store unreachable (%s); %s", err, policy)
        if not self._fail_open:
            raise errors.StoreUnavailable()
        self._seen.fallback()
        return self._admit_local(principal, tokens, cost, request)

    def _store_reachable(self) -> None:
        if self._store_down:
            self._store_down = False
            self._seen.store_up(True)
            log.warning("state store reachable again; limits and budgets are shared again")

    # -- shared --------------------------------------------------------------------------------

    async def _admit_shared(self, call: scripts.Call, *, again: bool) -> bytes:
        """The admit's reply, with the settles queued since the last admit sent ahead of it in
        the same round trip (only while the store is up)."""
        assert self._store is not None
        assert self._settlements is not None
        carried = self._settlements.carry() if again else []
        landed = False
        try:
            replies = await self._store.run_all([*carried, call])
            landed = True
        except statestore.Unavailable:
            if not again:
                raise
            self._settlements.carried(carried, landed=False)
            carried = []
            # Once more at once: a reply lost to a dropped connection is answered again from
            # the ticket, without taking anything twice. A down store fails fast again.
            replies = await self._store.run_all([call])
        finally:
            self._settlements.carried(carried, landed=landed)
        reply: bytes = replies[-1]
        return reply

    def _keys(self, digest: str, windows: budgets.Windows) -> bytes:
        """The keys one admit charges, framed: the caller's counters (framed once per caller,
        day and month) and a new ticket."""
        assert self._store is not None
        day, month = windows.day.id, windows.month.id
        known = self._callers.get((digest, day, month))
        if known is None:
            if len(self._callers) >= MAX_CALLERS:
                self._callers.clear()
            prefix = self._store.caller(digest)
            counters = scripts.Bulks.of(
                f"{prefix}rpm", f"{prefix}tpm", f"{prefix}td:{day}", f"{prefix}tm:{month}",
                f"{prefix}cd:{day}", f"{prefix}cm:{month}",
            )  # fmt: skip
            known = self._callers[(digest, day, month)] = (
                counters.data,
                f"{prefix}r:{self._ticket_nonce}.",
            )
        counters_data, ticket = known
        return counters_data + scripts.bulk(f"{ticket}{next(self._ticket_ids):x}")

    def _send_settle(self, keys: bytes, tokens: int, cost: int, *, release: bool) -> None:
        assert self._settlements is not None
        self._settlements.add(
            scripts.Call.framed(
                scripts.SETTLE,
                keys
                + self._settle_limits
                + scripts.bulk(repr(self._wall()))
                + scripts.bulk(tokens)
                + scripts.bulk(cost)
                + scripts.bulk(int(release)),
            )
        )

    def _refuse_oversized(self, tokens: int, cost: int) -> None:
        limits = (
            ("tokensPerMinute", self._tpm, tokens),
            ("budget.tokensPerDay", self._budget.tokens_day, tokens),
            ("budget.tokensPerMonth", self._budget.tokens_month, tokens),
            ("budget.costPerDay", self._budget.cost_day, cost),
            ("budget.costPerMonth", self._budget.cost_month, cost),
        )
        for name, limit, amount in limits:
            if limit and amount > limit:
                raise errors.PayloadTooLarge(
                    f"this request may use more than the whole {name} of this caller (prompt"
                    " estimate + max_tokens); lower max_tokens or shorten it",
                    param="max_tokens",
                )

    def _refuse(
        self,
        failing: list[str],
        levels: list[float],
        tokens: int,
        request: bool,
        windows: budgets.Windows,
        headers: dict[str, str],
    ) -> None:
        waits: dict[str, float] = {}
        for kind in failing:
            if kind == "requests":
                waits[kind] = (int(request) - levels[0]) / (self._rpm / 60)
            elif kind == "tokens":
                waits[kind] = (tokens - levels[1]) / (self._tpm / 60)
            else:
                window = BUDGET_KINDS[kind][1]
                waits[kind] = (windows.day if window == "day" else windows.month).reset_seconds
        kind = max(waits, key=lambda k: waits[k])
        wait = max(waits[kind], 0.001)
        headers["retry-after"] = str(max(1, math.ceil(wait)))
        headers["retry-after-ms"] = str(max(1, math.ceil(wait * 1000)))
        if kind in BUDGET_KINDS:
            measure, window = BUDGET_KINDS[kind]
            self._seen.budget_rejected(measure, window)
            raise errors.BudgetExceeded(
                f"the {'daily' if window == 'day' else 'monthly'} {measure} budget of this"
                " caller is spent; it resets at the start"
                f" of the next UTC {window}, in {budgets_duration(wait)}",
                headers=headers,
            )
        limit = self._rpm if kind == "requests" else self._tpm
        raise errors.RateLimited(
            f"rate limit reached: {limit} {kind} per minute for this caller (across all"
            f" replicas); retry in {wait:.1f}s",
            kind=kind,
            headers=headers,
        )

    def _headers(self, levels: list[float], windows: budgets.Windows) -> dict[str, str]:
        headers: dict[str, str] = {}
        for kind, limit, limit_text, index in self._rate_headers:
            level = levels[index]
            headers[f"x-ratelimit-limit-{kind}"] = limit_text
            headers[f"x-ratelimit-remaining-{kind}"] = str(max(0, math.floor(level)))
            headers[f"x-ratelimit-reset-{kind}"] = ratelimit.duration(
                max(0.0, (limit - level) / (limit / 60))
            )
        for name, limit, index, daily, cost in self._budget_headers:
            left = max(0, int(limit - levels[index]))
            headers[f"x-corral-budget-remaining-{name}"] = pricing.usd(left) if cost else str(left)
            window = windows.day if daily else windows.month
            headers[f"x-corral-budget-reset-{'day' if daily else 'month'}"] = ratelimit.duration(
                window.reset_seconds
            )
        return headers


def budgets_duration(seconds: float) -> str:
    hours, rest = divmod(int(seconds), 3600)
    return f"{hours}h{rest // 60:02d}m" if hours else f"{rest // 60}m{rest % 60:02d}s"
