"""The agent loop against a scripted in-process provider and tool runner (no I/O)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest

from corral.runtime import agentloop, callchain, errors, tools
from corral.runtime.providers import base

pytestmark = pytest.mark.anyio

SAMPLING = agentloop.Sampling(temperature=0.5, max_tokens=50)
USER = [{"role": "user", "content": "hi"}]


class Scripted:
    """A Provider answering from a list of turns; each turn is a Completion (used whole or
    cut into Deltas for streams). Records the params of every call."""

    provider = "scripted"
    model = "m"

    def __init__(self, *turns: base.Completion) -> None:
        self.turns = list(turns)
        self.calls: list[base.ChatParams] = []

    async def complete(self, params: base.ChatParams) -> base.Completion:
        self.calls.append(params)
        return self.turns.pop(0)

    async def stream(self, params: base.ChatParams) -> AsyncIterator[base.Delta]:
        self.calls.append(params)
        turn = self.turns.pop(0)
        for word in (turn.content or "").split(" "):
            yield base.Delta(content=word + " ")
        for index, call in enumerate(turn.tool_calls):
            half = len(call.arguments) // 2
            yield base.Delta(
                tool_calls=[base.ToolCallDelta(index, call.id, call.name, call.arguments[:half])]
            )
            yield base.Delta(
                tool_calls=[base.ToolCallDelta(index, arguments=call.arguments[half:])]
            )
        yield base.Delta(finish_reason=turn.finish_reason, usage=turn.usage)

    async def aclose(self) -> None:
        return None


class EchoTools:
    definitions: list[dict[str, Any]] = [{"type": "function", "function": {"name": "echo"}}]

    def __init__(self) -> None:
        self.batches: list[list[base.ToolCall]] = []

    async def run(
        self, calls: Sequence[base.ToolCall], chain: callchain.Chain, trace_parent: Any = None
    ) -> list[tools.ToolResult]:
        self.batches.append(list(calls))
        return [tools.ToolResult(c.id, c.name, f"echo {c.arguments}", "ok") for c in calls]


USAGE = base.Usage(10, 2)
CHAIN = callchain.parse(None, "shop/support", 3)


def text(content: str, usage: base.Usage | None = USAGE) -> base.Completion:
    return base.Completion(content, [], "stop", usage, "m")


def calls(*made: base.ToolCall) -> base.Completion:
    return base.Completion(None, list(made), "tool_calls", base.Usage(10, 3), "m")


def loop(provider: Scripted, runner: EchoTools, turns: int = 4) -> agentloop.AgentLoop:
    return agentloop.AgentLoop(provider, runner, turns)


async def test_tool_results_are_fed_back_until_the_model_answers() -> None:
    provider = Scripted(
        calls(base.ToolCall("a", "echo", '{"x":1}'), base.ToolCall("b", "echo", "{}")),
        text("done"),
    )
    runner = EchoTools()
    meter = agentloop.Meter()

    answer = await loop(provider, runner).complete(USER, SAMPLING, meter, CHAIN)

    assert (answer.content, answer.finish_reason) == ("done", "stop")
    assert answer.usage == base.Usage(20, 5)
    assert [len(batch) for batch in runner.batches] == [2]
    second = provider.calls[1].messages
    assert second[1]["tool_calls"][1]["id"] == "b"
    assert second[2:] == [
        {"role": "tool", "tool_call_id": "a", "content": 'echo {"x":1}'},
        {"role": "tool", "tool_call_id": "b", "content": "echo {}"},
    ]
    assert provider.calls[0].temperature == 0.5
    assert provider.calls[0].tools == EchoTools.definitions
    assert USER == [{"role": "user", "content": "hi"}]  # the caller's list is not touched


async def test_too_many_tool_turns_raise_a_clear_error_keeping_the_usage() -> None:
    provider = Scripted(*(calls(base.ToolCall(str(n), "echo", "{}")) for n in range(3)))
    runner = EchoTools()
    meter = agentloop.Meter()

    with pytest.raises(errors.ToolIterationsExceeded, match="3 turns"):
        await loop(provider, runner, turns=3).complete(USER, SAMPLING, meter, CHAIN)

    assert len(provider.calls) == 3
    assert len(runner.batches) == 2
    assert meter.usage == base.Usage(30, 9)


async def test_a_provider_without_usage_is_estimated() -> None:
    answer = await loop(Scripted(text("four score and seven", usage=None)), EchoTools()).complete(
        USER, SAMPLING, agentloop.Meter(), CHAIN
    )

    assert answer.usage.prompt_tokens > 0
    assert answer.usage.completion_tokens == 5  # 20 characters / 4


async def test_a_stream_joins_tool_call_fragments_and_hides_them_from_the_client() -> None:
    provider = Scripted(
        calls(base.ToolCall("a", "echo", '{"question":"why"}')),
        text("because it is"),
    )
    runner = EchoTools()

    deltas = [
        d async for d in loop(provider, runner).stream(USER, SAMPLING, agentloop.Meter(), CHAIN)
    ]

    assert runner.batches == [[base.ToolCall("a", "echo", '{"question":"why"}')]]
    assert all(not d.tool_calls for d in deltas)
    assert "".join(d.content or "" for d in deltas) == " because it is "
    assert [d.finish_reason for d in deltas if d.finish_reason] == ["stop"]
    assert deltas[-1].usage == base.Usage(20, 5)


async def test_streamed_calls_without_an_id_get_one() -> None:
    provider = Scripted(calls(base.ToolCall("", "echo", "{}")), text("ok"))
    runner = EchoTools()

    _ = [d async for d in loop(provider, runner).stream(USER, SAMPLING, agentloop.Meter(), CHAIN)]

    assert runner.batches[0][0].id == "call_0"
