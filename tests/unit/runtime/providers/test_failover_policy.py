"""The failover chain's policy, over in-memory providers and a hand-moved clock.

Retries, Retry-After, refusals, circuit skipping and cancellation; the same behaviour over real
HTTP is in tests/runtime/providers/test_failover_http.py."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import anyio
import pytest

from corral.runtime.providers import base
from corral.runtime.providers.backoff import RetryPolicy
from corral.runtime.providers.circuit import BreakerPolicy, State
from corral.runtime.providers.failover import FailoverChain

pytestmark = pytest.mark.anyio

PARAMS = base.ChatParams(messages=[{"role": "user", "content": "hi"}])
Script = base.Completion | base.ProviderError | list[base.Delta | base.ProviderError] | None


def answer(text: str) -> base.Completion:
    return base.Completion(text, [], "stop", base.Usage(1, 1), "m")


def unavailable(status: int = 503, retry_after: float | None = None) -> base.ProviderError:
    return base.ProviderUnavailable("down", provider="mem", status=status, retry_after=retry_after)


@dataclass
class Memory:
    """A provider answering from a script: a Completion, an error to raise, a list of stream
    items (a Delta to yield or an error to raise), or None to block until cancelled."""

    model: str
    script: list[Script] = field(default_factory=list)
    calls: int = 0
    closed_streams: int = 0
    provider: str = "mem"

    def _next(self) -> Script:
        self.calls += 1
        return self.script.pop(0) if self.script else answer(self.model)

    async def complete(self, params: base.ChatParams) -> base.Completion:
        step = self._next()
        if step is None:
            await anyio.sleep_forever()
        if isinstance(step, base.ProviderError):
            raise step
        assert isinstance(step, base.Completion)
        return step

    async def stream(self, params: base.ChatParams) -> AsyncIterator[base.Delta]:
        step = self._next()
        try:
            if isinstance(step, base.ProviderError):
                raise step
            items = step if isinstance(step, list) else [base.Delta(content=self.model)]
            for item in items:
                if isinstance(item, base.ProviderError):
                    raise item
                yield item
        finally:
            self.closed_streams += 1

    async def aclose(self) -> None:
        return None


class Recorder:
    def __init__(self) -> None:
        self.attempts: list[tuple[str, str]] = []
        self.failovers: list[tuple[str, str, str]] = []
        self.circuits: list[tuple[str, State]] = []

    def on_attempt(self, provider: str, model: str, outcome: str, seconds: float) -> None:
        self.attempts.append((model, outcome))

    def on_failover(self, from_model: str, to_model: str, reason: str) -> None:
        self.failovers.append((from_model, to_model, reason))

    def on_circuit(self, provider: str, model: str, state: State) -> None:
        self.circuits.append((model, state))


class Harness:
    def __init__(self, *models: Memory, attempts: int = 3, threshold: int = 5) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []
        self.observer = Recorder()
        self.chain = FailoverChain(
            list(models),
            observer=self.observer,
            retry=RetryPolicy(attempts=attempts, base_delay=0.1, max_delay=1, max_retry_after=5),
            breaker=BreakerPolicy(failure_threshold=threshold, cooldown=30),
            clock=lambda: self.now,
            sleep=self.sleep,
            rng=random.Random(3),
        )

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


async def test_retryable_errors_are_retried_on_the_same_model_with_growing_delays() -> None:
    primary = Memory("p", [unavailable(), unavailable(), answer("third time")])
    h = Harness(primary, Memory("f"))
    assert (await h.chain.complete(PARAMS)).content == "third time"
    assert primary.calls == 3
    assert len(h.sleeps) == 2
    assert 0.05 <= h.sleeps[0] <= 0.1
    assert 0.1 <= h.sleeps[1] <= 0.2
    assert h.observer.attempts == [("p", "unavailable"), ("p", "unavailable"), ("p", "ok")]


async def test_a_short_retry_after_is_waited_out_before_retrying() -> None:
    primary = Memory("p", [unavailable(429, retry_after=2.0)])
    h = Harness(primary)
    await h.chain.complete(PARAMS)
    assert len(h.sleeps) == 1
    assert 2.0 <= h.sleeps[0] <= 2.1
    assert h.observer.attempts[0] == ("p", "rate_limited")


async def test_a_long_retry_after_fails_over_at_once_without_waiting() -> None:
    primary = Memory("p", [unavailable(429, retry_after=60.0)])
    fallback = Memory("f")
    h = Harness(primary, fallback)
    assert (await h.chain.complete(PARAMS)).content == "f"
    assert (primary.calls, fallback.calls, h.sleeps) == (1, 1, [])
    assert h.observer.failovers == [("p", "f", "rate_limited")]


async def test_a_refused_request_surfaces_at_once_and_does_not_count_against_the_circuit() -> None:
    refusal = base.ProviderRejected("bad request", provider="mem", status=400)
    primary = Memory("p", [unavailable(), refusal])
    fallback = Memory("f")
    h = Harness(primary, fallback, attempts=3, threshold=2)
    with pytest.raises(base.ProviderRejected) as caught:
        await h.chain.complete(PARAMS)
    assert caught.value.status == 400
    assert (primary.calls, fallback.calls) == (2, 0)
    primary.script = [unavailable()]
    await h.chain.complete(PARAMS)  # one more failure: the count restarted after the refusal
    assert h.chain.circuits()[0][2] is State.CLOSED


async def test_all_models_failing_raises_with_each_models_last_error_in_order() -> None:
    first = unavailable(500)
    last = unavailable(429, retry_after=30.0)
    h = Harness(Memory("p", [first]), Memory("f", [last]), attempts=1)
    with pytest.raises(base.AllProvidersFailed) as caught:
        await h.chain.complete(PARAMS)
    assert caught.value.errors == [first, last]
    assert (caught.value.status, caught.value.retry_after) == (429, 30.0)
    assert not caught.value.retryable


async def test_an_open_circuit_skips_its_model_without_calling_it() -> None:
    primary = Memory("p", [unavailable(), unavailable()])
    h = Harness(primary, Memory("f"), attempts=1, threshold=2)
    await h.chain.complete(PARAMS)
    await h.chain.complete(PARAMS)
    assert h.observer.circuits == [("p", State.OPEN)]
    h.now += 10
    assert (await h.chain.complete(PARAMS)).content == "f"
    assert primary.calls == 2
    assert h.observer.attempts[-2:] == [("p", "circuit_open"), ("f", "ok")]


async def test_an_open_circuit_error_says_when_the_next_probe_may_go() -> None:
    h = Harness(Memory("p", [unavailable()]), attempts=1, threshold=1)
    with pytest.raises(base.AllProvidersFailed):
        await h.chain.complete(PARAMS)
    h.now += 12
    with pytest.raises(base.AllProvidersFailed) as caught:
        await h.chain.complete(PARAMS)
    assert isinstance(caught.value.errors[0], base.CircuitOpen)
    assert caught.value.retry_after == pytest.approx(18)


async def test_a_cancelled_probe_lets_the_next_request_probe_again() -> None:
    primary = Memory("p", [unavailable(), None])
    h = Harness(primary, attempts=1, threshold=1)
    with pytest.raises(base.AllProvidersFailed):
        await h.chain.complete(PARAMS)
    h.now += 30
    with anyio.move_on_after(0.05):  # the probe hangs; the caller gives up
        await h.chain.complete(PARAMS)
    assert h.observer.attempts[-1] == ("p", "cancelled")
    assert (await h.chain.complete(PARAMS)).content == "p"
    assert h.observer.circuits == [
        ("p", State.OPEN),
        ("p", State.HALF_OPEN),
        ("p", State.CLOSED),
    ]


async def test_a_stream_fails_over_before_its_first_delta() -> None:
    primary = Memory("p", [[unavailable()]])
    h = Harness(primary, Memory("f"), attempts=1)
    deltas = [d async for d in h.chain.stream(PARAMS)]
    assert deltas == [base.Delta(content="f", model="f")]  # the first piece names its model
    assert primary.closed_streams == 1
    assert h.observer.failovers == [("p", "f", "unavailable")]


async def test_a_stream_error_after_the_first_delta_propagates_without_failover() -> None:
    primary = Memory("p", [[base.Delta(content="par"), unavailable()]])
    fallback = Memory("f")
    h = Harness(primary, fallback)
    stream = h.chain.stream(PARAMS)
    assert await anext(stream) == base.Delta(content="par", model="p")
    with pytest.raises(base.ProviderUnavailable):
        await anext(stream)
    assert (primary.calls, fallback.calls) == (1, 0)
    assert h.observer.attempts == [("p", "unavailable")]


async def test_a_consumer_leaving_a_stream_early_closes_the_upstream_stream() -> None:
    primary = Memory("p", [[base.Delta(content="a"), base.Delta(content="b")]])
    h = Harness(primary)
    stream = h.chain.stream(PARAMS)
    assert await anext(stream) == base.Delta(content="a", model="p")
    await stream.aclose()  # type: ignore[attr-defined]
    assert primary.closed_streams == 1
    assert h.observer.attempts == [("p", "cancelled")]


def test_a_chain_needs_a_model() -> None:
    with pytest.raises(ValueError, match="at least one provider"):
        FailoverChain([])


async def test_a_stream_breaking_mid_answer_counts_against_the_circuit() -> None:
    primary = Memory("p", [[base.Delta(content="par"), unavailable()]])
    h = Harness(primary, Memory("f"), threshold=1)
    stream = h.chain.stream(PARAMS)
    await anext(stream)
    with pytest.raises(base.ProviderUnavailable):
        await anext(stream)
    assert h.observer.circuits == [("p", State.OPEN)]
    assert (await h.chain.complete(PARAMS)).content == "f"
    assert primary.calls == 1
