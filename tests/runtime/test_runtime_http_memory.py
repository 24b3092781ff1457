"""Server-side conversation memory through the real server: history, isolation, bounds."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import openai
import pytest
from runtime_harness import AGENT, Running, agent_config

from fakes.openai_server import FakeOpenAI

MEMORY = {"enabled": True, "maxMessages": 4, "maxTokens": 1000, "maxSessions": 20}


def say(agent: Running, text: str, session: str, api_key: str = "unused") -> None:
    agent.client(api_key=api_key).chat.completions.create(
        model=AGENT,
        messages=[{"role": "user", "content": text}],
        extra_headers={"x-session-id": session},
    )


def test_a_session_remembers_earlier_turns(
    serve: Callable[..., Running], upstream: FakeOpenAI
) -> None:
    agent = serve(agent_config(upstream.base_url, memory=MEMORY))

    say(agent, "my name is Ada", "s-1")
    say(agent, "what is my name?", "s-1")

    sent = upstream.requests[-1].body["messages"]
    assert [(m["role"], m["content"]) for m in sent] == [
        ("user", "my name is Ada"),
        ("assistant", "Hello from the fake."),
        ("user", "what is my name?"),
    ]


def test_history_keeps_only_the_latest_messages(
    serve: Callable[..., Running], upstream: FakeOpenAI
) -> None:
    agent = serve(agent_config(upstream.base_url, memory=MEMORY))

    for turn in range(5):
        say(agent, f"turn {turn}", "s-1")

    sent = upstream.requests[-1].body["messages"]
    assert [m["content"] for m in sent if m["role"] == "user"] == ["turn 2", "turn 3", "turn 4"]


def test_sessions_are_private_to_each_api_key(
    serve: Callable[..., Running], upstream: FakeOpenAI
) -> None:
    config = agent_config(upstream.base_url, memory=MEMORY, auth={"apiKeysEnv": "KEYS"})
    agent = serve(config, env={"KEYS": "alice\nmallory"})

    say(agent, "alice's secret", "shared-id", api_key="alice")
    say(agent, "what did alice say?", "shared-id", api_key="mallory")

    sent = upstream.requests[-1].body["messages"]
    assert [m["content"] for m in sent] == ["what did alice say?"]


def test_requests_without_a_session_header_keep_no_history(
    serve: Callable[..., Running], upstream: FakeOpenAI
) -> None:
    agent = serve(agent_config(upstream.base_url, memory=MEMORY))
    client = agent.client()
    for text in ("one", "two"):
        client.chat.completions.create(model=AGENT, messages=[{"role": "user", "content": text}])

    assert len(upstream.requests[-1].body["messages"]) == 1


def test_an_unusable_session_id_is_a_bad_request(
    serve: Callable[..., Running], upstream: FakeOpenAI
) -> None:
    agent = serve(agent_config(upstream.base_url, memory=MEMORY))

    with pytest.raises(openai.BadRequestError) as caught:
        say(agent, "hi", "not allowed/" + "x" * 200)

    assert caught.value.param == "x-session-id"


def test_the_number_of_sessions_held_stays_at_the_cap_under_many_sessions(
    serve: Callable[..., Running], upstream: FakeOpenAI
) -> None:
    agent = serve(agent_config(upstream.base_url, memory=MEMORY))

    async def many() -> None:
        client = agent.async_client()
        for start in range(0, 200, 50):
            await asyncio.gather(
                *(
                    client.chat.completions.create(
                        model=AGENT,
                        messages=[{"role": "user", "content": "hi"}],
                        extra_headers={"x-session-id": f"session-{n}"},
                    )
                    for n in range(start, start + 50)
                )
            )
        await client.close()

    asyncio.run(many())

    assert agent.sample("corral_sessions") == MEMORY["maxSessions"]
