"""Failover and circuit breaking seen from the client: real upstreams that fail, and recover."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest
from runtime_harness import AGENT, Running, agent_config

from corral.api.runtimeconfig import ModelEndpoint
from corral.runtime.providers import backoff, circuit, factory
from fakes import scripts
from fakes.gemini_server import FakeGemini
from fakes.openai_server import FakeOpenAI

USER = [{"role": "user", "content": "hello"}]
RECOVERY_WAIT = 10.0


@pytest.fixture
def gemini() -> Iterator[FakeGemini]:
    with FakeGemini() as fake:
        yield fake


def test_a_failing_primary_fails_over_to_the_gemini_fallback(
    serve: Callable[..., Running], upstream: FakeOpenAI, gemini: FakeGemini
) -> None:
    upstream.default = scripts.error(500)
    gemini.default = scripts.text("Answer from the fallback.")
    agent = serve(agent_config(upstream.base_url, ("gemini", gemini.base_url)))

    answer = agent.client().chat.completions.create(model=AGENT, messages=USER)

    assert answer.choices[0].message.content == "Answer from the fallback."
    assert len(upstream.requests) >= 1
    assert (
        agent.sample("corral_provider_failovers_total", from_model="model-0", to_model="model-1")
        == 1
    )
    assert agent.sample(
        "corral_provider_calls_total", provider="openai", model="model-0", outcome="unavailable"
    )


def test_a_stream_fails_over_before_its_first_byte(
    serve: Callable[..., Running], upstream: FakeOpenAI, gemini: FakeGemini
) -> None:
    upstream.default = scripts.error(429, retry_after=60)
    gemini.default = scripts.text("streamed by gemini")
    agent = serve(agent_config(upstream.base_url, ("gemini", gemini.base_url)))

    chunks = agent.client().chat.completions.create(model=AGENT, messages=USER, stream=True)

    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == (
        "streamed by gemini"
    )


def fast_breaker(models: list[ModelEndpoint], env: Mapping[str, str], observer: Any) -> Any:
    """The production chain with a breaker that opens after 2 failures for half a second."""
    return factory.build_chain(
        models,
        env,
        observer,
        retry=backoff.RetryPolicy(attempts=1),
        breaker=circuit.BreakerPolicy(failure_threshold=2, cooldown=0.5),
    )


def test_the_circuit_opens_after_failures_and_closes_after_a_good_probe(
    serve: Callable[..., Running], upstream: FakeOpenAI
) -> None:
    with FakeOpenAI(scripts.text("from the fallback")) as fallback:
        agent = serve(
            agent_config(upstream.base_url, fallback.base_url), chain_factory=fast_breaker
        )
        client = agent.client()
        upstream.default = scripts.error(503)
        for _ in range(2):
            client.chat.completions.create(model=AGENT, messages=USER)
        assert len(upstream.requests) == 2
        assert agent.sample("corral_circuit_state", model="model-0") == 2  # open

        answer = client.chat.completions.create(model=AGENT, messages=USER)
        assert answer.choices[0].message.content == "from the fallback"
        assert len(upstream.requests) == 2  # skipped while open

        upstream.default = scripts.text("the primary is back")
        deadline = time.monotonic() + RECOVERY_WAIT
        answered_by: str | None = None
        while answered_by != "the primary is back":
            assert time.monotonic() < deadline, "the circuit never let a probe through"
            time.sleep(0.1)
            answer = client.chat.completions.create(model=AGENT, messages=USER)
            answered_by = answer.choices[0].message.content
        assert agent.sample("corral_circuit_state", model="model-0") == 0  # closed
