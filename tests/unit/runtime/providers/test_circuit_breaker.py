"""The circuit breaker's state machine, driven by a hand-moved clock."""

from __future__ import annotations

import pytest

from corral.runtime.providers.circuit import BreakerPolicy, CircuitBreaker, Permit, State


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def changes() -> list[State]:
    return []


@pytest.fixture
def breaker(clock: Clock, changes: list[State]) -> CircuitBreaker:
    policy = BreakerPolicy(failure_threshold=3, cooldown=30)
    return CircuitBreaker(policy, clock=clock, on_change=changes.append)


def fail(breaker: CircuitBreaker, times: int) -> None:
    for _ in range(times):
        assert breaker.allow() is not None
        breaker.failed()


def test_closed_circuit_lets_calls_through_until_the_threshold_of_consecutive_failures(
    breaker: CircuitBreaker, changes: list[State]
) -> None:
    fail(breaker, 2)
    assert breaker.allow() is Permit.CALL
    assert breaker.state is State.CLOSED
    breaker.failed()
    assert breaker.state is State.OPEN
    assert breaker.allow() is None
    assert changes == [State.OPEN]


def test_a_success_resets_the_count_of_consecutive_failures(breaker: CircuitBreaker) -> None:
    fail(breaker, 2)
    breaker.allow()
    breaker.succeeded()
    fail(breaker, 2)
    assert breaker.state is State.CLOSED


def test_after_the_cooldown_exactly_one_probe_is_let_through(
    breaker: CircuitBreaker, clock: Clock
) -> None:
    fail(breaker, 3)
    clock.now += 29.9
    assert breaker.allow() is None
    assert breaker.seconds_until_probe() == pytest.approx(0.1)
    clock.now += 0.1
    assert breaker.state is State.HALF_OPEN
    assert breaker.allow() is Permit.PROBE
    assert breaker.allow() is None


def test_a_successful_probe_closes_the_circuit(
    breaker: CircuitBreaker, clock: Clock, changes: list[State]
) -> None:
    fail(breaker, 3)
    clock.now += 30
    assert breaker.allow() is Permit.PROBE
    breaker.succeeded()
    assert breaker.state is State.CLOSED
    assert breaker.allow() is Permit.CALL
    assert changes == [State.OPEN, State.HALF_OPEN, State.CLOSED]


def test_a_failed_probe_opens_the_circuit_for_another_full_cooldown(
    breaker: CircuitBreaker, clock: Clock, changes: list[State]
) -> None:
    fail(breaker, 3)
    clock.now += 30
    assert breaker.allow() is Permit.PROBE
    breaker.failed()
    assert breaker.state is State.OPEN
    clock.now += 29
    assert breaker.allow() is None
    clock.now += 1
    assert breaker.allow() is Permit.PROBE
    assert changes == [State.OPEN, State.HALF_OPEN, State.OPEN, State.HALF_OPEN]


def test_an_abandoned_probe_frees_the_slot_for_the_next_probe(
    breaker: CircuitBreaker, clock: Clock
) -> None:
    fail(breaker, 3)
    clock.now += 30
    probe = breaker.allow()
    assert probe is Permit.PROBE
    breaker.abandoned(probe)
    assert breaker.allow() is Permit.PROBE


def test_an_abandoned_ordinary_call_does_not_free_the_probe_slot(
    breaker: CircuitBreaker, clock: Clock
) -> None:
    assert breaker.allow() is Permit.CALL  # a call in flight while the circuit opens
    fail(breaker, 3)
    clock.now += 30
    assert breaker.allow() is Permit.PROBE
    breaker.abandoned(Permit.CALL)
    assert breaker.allow() is None


@pytest.mark.parametrize(
    ("threshold", "cooldown"), [(0, 1.0), (1, -1.0)], ids=["no-threshold", "negative-cooldown"]
)
def test_policy_rejects_nonsense(threshold: int, cooldown: float) -> None:
    with pytest.raises(ValueError, match="BreakerPolicy"):
        BreakerPolicy(failure_threshold=threshold, cooldown=cooldown)
