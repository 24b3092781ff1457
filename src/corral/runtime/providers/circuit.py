"""A circuit breaker for one model endpoint. Pure: time comes from an injected clock.

closed -> open after `failure_threshold` consecutive failures; open -> half-open once
`cooldown` seconds have passed, letting exactly one probe call through; the probe's success
closes the circuit, its failure opens it again for another cool-down. Used by
`failover.FailoverChain`, one breaker per model of the chain; no locks are needed because
every method runs on the event loop without awaiting.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable
from dataclasses import dataclass


class State(enum.Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class Permit(enum.Enum):
    """What `allow()` granted: an ordinary call, or the one probe of a half-open circuit."""

    CALL = "call"
    PROBE = "probe"


@dataclass(frozen=True, slots=True)
class BreakerPolicy:
    failure_threshold: int = 5
    cooldown: float = 30.0

    def __post_init__(self) -> None:
        if self.failure_threshold < 1:
            raise ValueError("BreakerPolicy.failure_threshold must be at least 1")
        if self.cooldown < 0:
            raise ValueError("BreakerPolicy.cooldown must not be negative")


class CircuitBreaker:
    """Decides whether a call may go to the endpoint, and learns from each outcome.

    Protocol: `allow()` before a call (None: do not call); then for every permit granted,
    exactly one of `succeeded()`, `failed()` or `abandoned(permit)` (the call was cancelled
    and taught us nothing).
    `on_change(state)` is told about every transition."""

    def __init__(
        self,
        policy: BreakerPolicy,
        *,
        clock: Callable[[], float] = time.monotonic,
        on_change: Callable[[State], None] | None = None,
    ) -> None:
        self._policy = policy
        self._clock = clock
        self._on_change = on_change
        self._state = State.CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._probing = False

    @property
    def state(self) -> State:
        """The state as of now (an open circuit whose cool-down passed reads half-open)."""
        if self._state is State.OPEN and self._cooled_down():
            return State.HALF_OPEN
        return self._state

    def seconds_until_probe(self) -> float:
        """How long an open circuit stays shut (0 when a call could be allowed now)."""
        if self._state is not State.OPEN:
            return 0.0
        return max(0.0, self._opened_at + self._policy.cooldown - self._clock())

    def allow(self) -> Permit | None:
        if self._state is State.OPEN:
            if not self._cooled_down():
                return None
            self._move(State.HALF_OPEN)
        if self._state is State.HALF_OPEN:
            if self._probing:
                return None
            self._probing = True
            return Permit.PROBE
        return Permit.CALL

    def succeeded(self) -> None:
        self._failures = 0
        self._probing = False
        if self._state is not State.CLOSED:
            self._move(State.CLOSED)

    def failed(self) -> None:
        self._probing = False
        if self._state is State.HALF_OPEN:
            self._open()
            return
        self._failures += 1
        if self._state is State.CLOSED and self._failures >= self._policy.failure_threshold:
            self._open()

    def abandoned(self, permit: Permit) -> None:
        """The call ended without an outcome: if it was the probe, let another one through."""
        if permit is Permit.PROBE:
            self._probing = False

    def _open(self) -> None:
        self._opened_at = self._clock()
        self._failures = 0
        self._move(State.OPEN)

    def _cooled_down(self) -> bool:
        return self._clock() - self._opened_at >= self._policy.cooldown

    def _move(self, state: State) -> None:
        self._state = state
        if self._on_change is not None:
            self._on_change(state)
