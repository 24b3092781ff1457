"""The console's `Chat` against the real runtime over real HTTP (here directly, not through an
API server: the proxy is proved on real pods in tests/e2e/pods): a conversation kept by the
client sends every turn, one with an Agent that has memory sends only the new question and a
session id, and the runtime's errors become messages that name the Agent."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import openai
import pytest
from runtime_harness import AGENT, Running, agent_config

from corral.console import chatevents, chatting
from fakes import scripts
from fakes.openai_server import FakeOpenAI


def target(memory: bool) -> chatevents.Target:
    return chatevents.Target("default", AGENT, AGENT, "http", True, "Available", memory)


def converse(agent: Running, memory: bool, *questions: str) -> list[list[chatevents.Event]]:
    async def run() -> list[list[chatevents.Event]]:
        chat = chatting.Chat(
            target(memory), openai.AsyncOpenAI(base_url=agent.base_url, api_key="x")
        )
        try:
            return [[event async for event in chat.send(q)] for q in questions]
        finally:
            await chat.aclose()

    return asyncio.run(run())


def sent(upstream: FakeOpenAI) -> list[tuple[str, str]]:
    return [(m["role"], m["content"]) for m in upstream.requests[-1].body["messages"]]


def test_without_memory_the_client_sends_the_whole_conversation(
    serve: Callable[..., Running], upstream: FakeOpenAI
) -> None:
    agent = serve(agent_config(upstream.base_url))
    answers = converse(agent, False, "my name is Ada", "what is my name?")
    first = "".join(e.text for e in answers[0] if isinstance(e, chatevents.Content))
    assert sent(upstream) == [
        ("user", "my name is Ada"),
        ("assistant", first),
        ("user", "what is my name?"),
    ]
    assert [type(e) for e in answers[1]][-2:] == [chatevents.Answered, chatevents.Usage]


def test_with_memory_the_runtime_keeps_the_conversation_by_session(
    serve: Callable[..., Running], upstream: FakeOpenAI
) -> None:
    agent = serve(agent_config(upstream.base_url, memory={"enabled": True}))
    converse(agent, True, "my name is Ada", "what is my name?")
    assert sent(upstream) == [
        ("user", "my name is Ada"),
        ("assistant", "Hello from the fake."),
        ("user", "what is my name?"),
    ]
    (first, second) = upstream.requests[-2:]
    assert [m["content"] for m in first.body["messages"]] == ["my name is Ada"]
    assert len(second.body["messages"]) == 3  # the history came from the runtime


def test_a_runtime_error_names_the_agent_and_keeps_its_message(
    serve: Callable[..., Running], upstream: FakeOpenAI
) -> None:
    upstream.default = scripts.error(400, "the prompt is too long for this model")
    agent = serve(agent_config(upstream.base_url))
    with pytest.raises(chatevents.ChatError) as failed:
        converse(agent, False, "Hello")
    assert failed.value.message.startswith(f"agent default/{AGENT} answered ")
    assert "the prompt is too long for this model" in failed.value.message
