"""The rate limiter under concurrent clients, through the real server.

The limiter's clock is frozen here, so no allowance refills during a test: whatever the
machine's speed, the limit is the exact number of requests that may be admitted.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import openai
import pytest
from runtime_harness import AGENT, Running, agent_config

from corral.runtime import tokens
from corral.runtime.settings import Settings
from fakes import scripts
from fakes.openai_server import FakeOpenAI

USER = [{"role": "user", "content": "hello"}]
CLIENTS = 50


def frozen() -> float:
    return 1000.0


async def burst(agent: Running, count: int, **options: object) -> list[BaseException | object]:
    """`count` concurrent chat requests; each result is the answer or the exception."""
    client = agent.async_client()
    try:
        calls = [
            client.chat.completions.create(model=AGENT, messages=USER, **options)  # type: ignore[call-overload]
            for _ in range(count)
        ]
        return await asyncio.gather(*calls, return_exceptions=True)
    finally:
        await client.close()


def test_fifty_concurrent_clients_never_get_more_requests_than_the_limit(
    serve: Callable[..., Running], upstream: FakeOpenAI
) -> None:
    agent = serve(
        agent_config(upstream.base_url, rateLimit={"requestsPerMinute": 10}), clock=frozen
    )

    results = asyncio.run(burst(agent, CLIENTS))

    admitted = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, openai.RateLimitError)]
    assert (len(admitted), len(refused)) == (10, 40)
    assert len(upstream.requests) == 10
    assert agent.sample("corral_ratelimit_rejections_total", kind="requests") == 40


def test_fifty_concurrent_clients_never_reserve_more_tokens_than_the_limit(
    serve: Callable[..., Running], upstream: FakeOpenAI
) -> None:
    limit, max_tokens = 1000, 240
    reservation = tokens.estimate_messages(USER) + max_tokens
    # Every admitted answer stalls after its first words, so each admitted request still holds
    # its reservation while all fifty are decided: nothing is refunded mid-test.
    upstream.default = scripts.text("one two three", stall_after=1)
    agent = serve(
        agent_config(upstream.base_url, rateLimit={"tokensPerMinute": limit}), clock=frozen
    )

    async def run() -> tuple[int, list[BaseException]]:
        client = agent.async_client()
        results = await asyncio.gather(
            *(
                client.chat.completions.create(
                    model=AGENT, messages=USER, max_tokens=max_tokens, stream=True
                )
                for _ in range(CLIENTS)
            ),
            return_exceptions=True,
        )
        streams = [r for r in results if not isinstance(r, BaseException)]
        for stream in streams:
            await stream.close()
        await client.close()
        return len(streams), [r for r in results if isinstance(r, BaseException)]

    admitted, refused = asyncio.run(run())

    assert admitted == limit // reservation
    assert len(refused) == CLIENTS - admitted
    assert all(isinstance(e, openai.RateLimitError) and e.type == "tokens" for e in refused)
    assert len(upstream.requests) == admitted


def test_the_token_budget_is_settled_with_the_real_usage(
    serve: Callable[..., Running], upstream: FakeOpenAI
) -> None:
    upstream.default = scripts.text("ok", usage=(2, 1))
    agent = serve(
        agent_config(upstream.base_url, rateLimit={"tokensPerMinute": 1000}), clock=frozen
    )
    client = agent.client()

    first = client.chat.completions.with_raw_response.create(
        model=AGENT, messages=USER, max_tokens=900
    )
    # While the request ran, its whole reservation was held...
    held = int(first.headers["x-ratelimit-remaining-tokens"])
    assert held == 1000 - tokens.estimate_messages(USER) - 900
    # ...and once it ended, only the 3 tokens really used stayed spent.
    second = client.chat.completions.with_raw_response.create(
        model=AGENT, messages=USER, max_tokens=900
    )
    assert int(second.headers["x-ratelimit-remaining-tokens"]) == held - 3


def test_a_request_larger_than_the_whole_token_budget_is_413_not_429(
    serve: Callable[..., Running], upstream: FakeOpenAI
) -> None:
    agent = serve(agent_config(upstream.base_url, rateLimit={"tokensPerMinute": 100}))

    with pytest.raises(openai.APIStatusError) as caught:
        agent.client().chat.completions.create(model=AGENT, messages=USER, max_tokens=500)

    assert caught.value.status_code == 413
    assert caught.value.param == "max_tokens"


def test_limits_are_per_api_key(serve: Callable[..., Running], upstream: FakeOpenAI) -> None:
    config = agent_config(
        upstream.base_url, rateLimit={"requestsPerMinute": 1}, auth={"apiKeysEnv": "KEYS"}
    )
    agent = serve(config, env={"KEYS": "alice\nbob"}, clock=frozen)

    agent.client(api_key="alice").chat.completions.create(model=AGENT, messages=USER)
    agent.client(api_key="bob").chat.completions.create(model=AGENT, messages=USER)
    with pytest.raises(openai.RateLimitError):
        agent.client(api_key="alice").chat.completions.create(model=AGENT, messages=USER)


def test_under_a_token_limit_every_model_call_is_bounded_by_the_reservation(
    serve: Callable[..., Running], upstream: FakeOpenAI
) -> None:
    agent = serve(agent_config(upstream.base_url, rateLimit={"tokensPerMinute": 100_000}))

    agent.client().chat.completions.create(model=AGENT, messages=USER)

    sent = upstream.requests[-1].body
    assert Settings().default_reserved_completion_tokens in (
        sent.get("max_tokens"),
        sent.get("max_completion_tokens"),
    )
