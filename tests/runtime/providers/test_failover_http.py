"""The failover chain over real HTTP: providers built by the factory, fakes as upstreams.

Sleeps are recorded instead of slept and the circuit's clock is moved by hand, so nothing here
waits on wall time except the per-attempt timeout test (bounded at 0.3 s)."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from corral.api.runtimeconfig import ModelEndpoint
from corral.runtime.providers import base, factory
from corral.runtime.providers.backoff import RetryPolicy
from corral.runtime.providers.circuit import BreakerPolicy, State
from corral.runtime.providers.failover import FailoverChain
from fakes import scripts
from fakes.gemini_server import FakeGemini
from fakes.openai_server import FakeOpenAI

pytestmark = pytest.mark.anyio

PARAMS = base.ChatParams(messages=[{"role": "user", "content": "Where is order 7?"}])


class Recorder:
    """Observer that keeps every report."""

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


class Rig:
    """A chain under test plus its recorded sleeps, hand-moved clock and observer."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []
        self.observer = Recorder()
        self.chains: list[FailoverChain] = []

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)

    def chain(
        self,
        *models: ModelEndpoint,
        env: dict[str, str],
        attempts: int = 1,
        threshold: int = 5,
    ) -> FailoverChain:
        built = factory.build_chain(list(models), env, self.observer)
        chain = FailoverChain(
            built.providers,
            observer=self.observer,
            retry=RetryPolicy(attempts=attempts, base_delay=0.05, max_delay=0.2, max_retry_after=5),
            breaker=BreakerPolicy(failure_threshold=threshold, cooldown=30),
            clock=lambda: self.now,
            sleep=self.sleep,
            rng=random.Random(5),
        )
        self.chains.append(chain)
        return chain


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    made = Rig()
    yield made
    for chain in made.chains:
        await chain.aclose()


def openai_model(fake: FakeOpenAI, name: str, **extra: Any) -> ModelEndpoint:
    key_env = {"api_key_env": "PRIMARY_KEY"} if fake.api_key else {}
    return ModelEndpoint(provider="openai", name=name, base_url=fake.base_url, **key_env, **extra)


def gemini_model(fake: FakeGemini, name: str) -> ModelEndpoint:
    return ModelEndpoint(
        provider="gemini", name=name, base_url=fake.base_url, api_key_env="GEMINI_KEY"
    )


@pytest.fixture
def env(openai_upstream: FakeOpenAI, gemini_upstream: FakeGemini) -> dict[str, str]:
    assert openai_upstream.api_key is not None
    assert gemini_upstream.api_key is not None
    return {"PRIMARY_KEY": openai_upstream.api_key, "GEMINI_KEY": gemini_upstream.api_key}


@pytest.fixture
def pair(
    rig: Rig, env: dict[str, str], openai_upstream: FakeOpenAI, fallback_upstream: FakeOpenAI
) -> Callable[..., FailoverChain]:
    """A chain of primary (openai_upstream) then fallback (fallback_upstream)."""

    def build(**options: Any) -> FailoverChain:
        primary = openai_model(openai_upstream, "primary", **options.pop("primary", {}))
        fallback = openai_model(fallback_upstream, "fallback")
        return rig.chain(primary, fallback, env=env, **options)

    return build


async def text_of(stream: AsyncIterator[base.Delta]) -> str:
    return "".join([d.content or "" async for d in stream])


async def test_a_failing_primary_is_retried_then_the_fallback_answers(
    rig: Rig,
    pair: Callable[..., FailoverChain],
    openai_upstream: FakeOpenAI,
    fallback_upstream: FakeOpenAI,
) -> None:
    openai_upstream.default = scripts.error(500)
    answer = await pair(attempts=2).complete(PARAMS)
    assert answer.content == "fallback here"
    assert len(openai_upstream.requests) == 2
    assert len(fallback_upstream.requests) == 1
    assert len(rig.sleeps) == 1
    assert rig.observer.failovers == [("primary", "fallback", "unavailable")]
    assert rig.observer.attempts == [
        ("primary", "unavailable"),
        ("primary", "unavailable"),
        ("fallback", "ok"),
    ]


async def test_a_short_retry_after_is_honoured_on_the_same_model(
    rig: Rig,
    pair: Callable[..., FailoverChain],
    openai_upstream: FakeOpenAI,
    fallback_upstream: FakeOpenAI,
) -> None:
    openai_upstream.enqueue(scripts.error(429, retry_after=1))
    answer = await pair(attempts=2).complete(PARAMS)
    assert answer.content == "primary here"
    assert len(rig.sleeps) == 1
    assert 1.0 <= rig.sleeps[0] <= 1.05
    assert fallback_upstream.requests == []


async def test_a_rate_limited_primary_with_a_long_retry_after_fails_over_at_once(
    rig: Rig, pair: Callable[..., FailoverChain], openai_upstream: FakeOpenAI
) -> None:
    openai_upstream.default = scripts.error(429, retry_after=60)
    answer = await pair(attempts=3).complete(PARAMS)
    assert answer.content == "fallback here"
    assert len(openai_upstream.requests) == 1
    assert rig.sleeps == []
    assert rig.observer.failovers == [("primary", "fallback", "rate_limited")]


async def test_a_primary_that_times_out_fails_over(
    rig: Rig, pair: Callable[..., FailoverChain], openai_upstream: FakeOpenAI
) -> None:
    openai_upstream.enqueue(scripts.hang())
    chain = pair(primary={"timeout_seconds": 0.3})
    assert (await chain.complete(PARAMS)).content == "fallback here"
    assert rig.observer.failovers == [("primary", "fallback", "timeout")]


async def test_a_stream_fails_over_to_a_gemini_fallback_before_the_first_byte(
    rig: Rig,
    env: dict[str, str],
    openai_upstream: FakeOpenAI,
    gemini_upstream: FakeGemini,
) -> None:
    openai_upstream.enqueue(scripts.error(503))
    chain = rig.chain(
        openai_model(openai_upstream, "primary"), gemini_model(gemini_upstream, "gem"), env=env
    )
    assert await text_of(chain.stream(PARAMS)) == "gemini here"
    assert rig.observer.failovers == [("primary", "gem", "unavailable")]


async def test_no_failover_after_the_first_streamed_byte(
    rig: Rig,
    pair: Callable[..., FailoverChain],
    openai_upstream: FakeOpenAI,
    fallback_upstream: FakeOpenAI,
) -> None:
    openai_upstream.enqueue(scripts.text("half an answer", break_after=1))
    stream = pair(attempts=3).stream(PARAMS)
    assert (await anext(stream)).content == "half "
    with pytest.raises(base.ProviderUnavailable):
        await anext(stream)
    assert len(openai_upstream.requests) == 1
    assert fallback_upstream.requests == []
    assert rig.observer.failovers == []


async def test_circuit_opens_after_consecutive_failures_and_a_probe_closes_it(
    rig: Rig,
    pair: Callable[..., FailoverChain],
    openai_upstream: FakeOpenAI,
    fallback_upstream: FakeOpenAI,
) -> None:
    chain = pair(threshold=2)
    openai_upstream.enqueue(scripts.error(500), scripts.error(502))
    for _ in range(2):
        assert (await chain.complete(PARAMS)).content == "fallback here"
    assert rig.observer.circuits == [("primary", State.OPEN)]

    rig.now += 10  # still cooling down: the primary is not even asked
    assert await text_of(chain.stream(PARAMS)) == "fallback here"
    assert len(openai_upstream.requests) == 2
    assert rig.observer.attempts[-2] == ("primary", "circuit_open")

    rig.now += 20  # cool-down over: one probe goes to the (recovered) primary
    assert (await chain.complete(PARAMS)).content == "primary here"
    assert len(openai_upstream.requests) == 3
    assert rig.observer.circuits == [
        ("primary", State.OPEN),
        ("primary", State.HALF_OPEN),
        ("primary", State.CLOSED),
    ]
    assert chain.circuits()[0][2] is State.CLOSED


async def test_all_models_failing_raises_carrying_the_last_status_and_retry_after(
    pair: Callable[..., FailoverChain], openai_upstream: FakeOpenAI, fallback_upstream: FakeOpenAI
) -> None:
    openai_upstream.default = scripts.error(503)
    fallback_upstream.default = scripts.error(429, retry_after=30)
    with pytest.raises(base.AllProvidersFailed) as caught:
        await pair().complete(PARAMS)
    assert (caught.value.status, caught.value.retry_after) == (429, 30.0)
    assert [e.status for e in caught.value.errors] == [503, 429]


async def test_a_refused_request_is_not_failed_over(
    pair: Callable[..., FailoverChain], openai_upstream: FakeOpenAI, fallback_upstream: FakeOpenAI
) -> None:
    openai_upstream.enqueue(scripts.error(400, "messages: field required"))
    with pytest.raises(base.ProviderRejected, match="field required") as caught:
        await pair(attempts=3).complete(PARAMS)
    assert caught.value.status == 400
    assert len(openai_upstream.requests) == 1
    assert fallback_upstream.requests == []
