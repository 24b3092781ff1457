"""The `openai` provider over real HTTP: the official SDK against the scripted OpenAI fake."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from corral.runtime.providers import base
from corral.runtime.providers.openai import OpenAIProvider
from fakes import scripts
from fakes.openai_server import FakeOpenAI

pytestmark = pytest.mark.anyio

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "order_lookup",
            "description": "Look up an order",
            "parameters": {"type": "object", "properties": {"order_id": {"type": "string"}}},
        },
    }
]
PARAMS = base.ChatParams(
    messages=[
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Where is order 7?"},
    ],
    tools=TOOLS,
)

MakeProvider = Callable[..., OpenAIProvider]


@pytest.fixture
async def make(openai_upstream: FakeOpenAI) -> AsyncIterator[MakeProvider]:
    """Builds providers pointed at the fake (with its key) and closes them afterwards."""
    made: list[OpenAIProvider] = []

    def build(**overrides: Any) -> OpenAIProvider:
        options: dict[str, Any] = {
            "model": "gpt-test",
            "api_key": openai_upstream.api_key,
            "base_url": openai_upstream.base_url,
            "timeout": 5.0,
        }
        made.append(OpenAIProvider(**(options | overrides)))
        return made[-1]

    yield build
    for provider in made:
        await provider.aclose()


async def collect(provider: OpenAIProvider, params: base.ChatParams = PARAMS) -> list[base.Delta]:
    return [delta async for delta in provider.stream(params)]


async def test_complete_returns_the_answer_and_usage_and_sends_model_key_and_defaults(
    make: MakeProvider, openai_upstream: FakeOpenAI
) -> None:
    openai_upstream.enqueue(scripts.text("It ships today.", usage=(12, 4)))
    provider = make(temperature=0.3, max_tokens=99)

    answer = await provider.complete(PARAMS)

    assert answer == base.Completion(
        content="It ships today.",
        tool_calls=[],
        finish_reason="stop",
        usage=base.Usage(prompt_tokens=12, completion_tokens=4),
        model="gpt-test",
    )
    [sent] = openai_upstream.requests
    assert sent.headers["authorization"] == f"Bearer {openai_upstream.api_key}"
    assert sent.body["model"] == "gpt-test"
    assert sent.body["messages"] == PARAMS.messages
    assert sent.body["tools"] == TOOLS
    assert (sent.body["temperature"], sent.body["max_tokens"]) == (0.3, 99)
    assert "stream" not in sent.body


async def test_request_values_override_the_endpoint_defaults(
    make: MakeProvider, openai_upstream: FakeOpenAI
) -> None:
    params = base.ChatParams(
        messages=PARAMS.messages, temperature=0.0, max_tokens=5, top_p=0.5, stop=["\n"]
    )
    await make(temperature=0.3, max_tokens=99).complete(params)
    body = openai_upstream.requests[0].body
    assert (body["temperature"], body["max_tokens"], body["top_p"], body["stop"]) == (
        0.0,
        5,
        0.5,
        ["\n"],
    )
    assert "tools" not in body


async def test_complete_returns_parallel_tool_calls_with_their_ids(
    make: MakeProvider, openai_upstream: FakeOpenAI
) -> None:
    openai_upstream.enqueue(
        scripts.tool_calls(
            scripts.call("order_lookup", {"order_id": "7"}, id="call_a"),
            scripts.call("order_lookup", {"order_id": "8"}, id="call_b"),
        )
    )
    answer = await make().complete(PARAMS)
    assert answer.finish_reason == "tool_calls"
    assert answer.content is None
    assert answer.tool_calls == [
        base.ToolCall(id="call_a", name="order_lookup", arguments='{"order_id":"7"}'),
        base.ToolCall(id="call_b", name="order_lookup", arguments='{"order_id":"8"}'),
    ]


async def test_stream_yields_the_text_then_one_finish_and_the_usage(
    make: MakeProvider, openai_upstream: FakeOpenAI
) -> None:
    openai_upstream.enqueue(scripts.text("It ships today.", usage=(12, 4)))

    deltas = await collect(make())

    assert "".join(d.content or "" for d in deltas) == "It ships today."
    assert [d.finish_reason for d in deltas if d.finish_reason] == ["stop"]
    assert [d.usage for d in deltas if d.usage] == [base.Usage(12, 4)]
    finish_at = next(i for i, d in enumerate(deltas) if d.finish_reason)
    assert all(d.content is None for d in deltas[finish_at:])
    body = openai_upstream.requests[0].body
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}


async def test_streamed_tool_call_fragments_keep_a_stable_index_and_reassemble(
    make: MakeProvider, openai_upstream: FakeOpenAI
) -> None:
    openai_upstream.enqueue(
        scripts.tool_calls(
            scripts.call("order_lookup", {"order_id": "7"}, id="call_a"),
            scripts.call("order_lookup", {"order_id": "8"}),
            content="Checking both.",
        )
    )
    deltas = await collect(make())

    calls: dict[int, dict[str, str]] = {}
    for fragment in (f for d in deltas for f in d.tool_calls):
        call = calls.setdefault(fragment.index, {"id": "", "name": "", "arguments": ""})
        if fragment.id:
            assert not call["id"], "id arrives once per call"
            call["id"] = fragment.id
        call["name"] += fragment.name or ""
        call["arguments"] += fragment.arguments
    assert sorted(calls) == [0, 1]
    assert calls[0]["id"] == "call_a"
    assert calls[1]["id"]
    assert [json.loads(calls[i]["arguments"]) for i in (0, 1)] == [
        {"order_id": "7"},
        {"order_id": "8"},
    ]
    assert {calls[i]["name"] for i in (0, 1)} == {"order_lookup"}
    assert "".join(d.content or "" for d in deltas) == "Checking both."
    assert [d.finish_reason for d in deltas if d.finish_reason] == ["tool_calls"]


@pytest.mark.parametrize(
    ("reply", "kind", "status", "retry_after"),
    [
        (scripts.error(500), base.ProviderUnavailable, 500, None),
        (scripts.error(503, retry_after=4), base.ProviderUnavailable, 503, 4.0),
        (scripts.error(429, retry_after=2), base.ProviderUnavailable, 429, 2.0),
        (scripts.error(400, "bad schema"), base.ProviderRejected, 400, None),
        (scripts.error(404, "no such model"), base.ProviderRejected, 404, None),
        (scripts.malformed(), base.ProviderUnavailable, None, None),
    ],
    ids=["500", "503-retry-after", "429-retry-after", "400", "404", "malformed"],
)
@pytest.mark.parametrize("streaming", [False, True], ids=["complete", "stream"])
async def test_upstream_failures_become_provider_errors(
    make: MakeProvider,
    openai_upstream: FakeOpenAI,
    reply: scripts.Reply,
    kind: type[base.ProviderError],
    status: int | None,
    retry_after: float | None,
    streaming: bool,
) -> None:
    openai_upstream.enqueue(reply)
    provider = make()
    with pytest.raises(kind) as caught:
        await (collect(provider) if streaming else provider.complete(PARAMS))
    assert (caught.value.status, caught.value.retry_after) == (status, retry_after)
    assert caught.value.provider == "openai"
    assert caught.value.retryable is (kind is base.ProviderUnavailable)
    assert len(openai_upstream.requests) == 1, "the SDK must not retry on its own"


async def test_a_wrong_key_is_a_rejection_not_a_retry(
    make: MakeProvider, openai_upstream: FakeOpenAI
) -> None:
    with pytest.raises(base.ProviderRejected) as caught:
        await make(api_key="sk-wrong").complete(PARAMS)
    assert caught.value.status == 401
    assert "sk-wrong" not in str(caught.value)


@pytest.mark.parametrize("streaming", [False, True], ids=["complete", "stream"])
async def test_a_hanging_upstream_times_out_after_the_per_attempt_timeout(
    make: MakeProvider, openai_upstream: FakeOpenAI, streaming: bool
) -> None:
    openai_upstream.enqueue(scripts.hang())
    provider = make(timeout=0.3)
    with pytest.raises(base.ProviderTimeout) as caught:
        await (collect(provider) if streaming else provider.complete(PARAMS))
    assert caught.value.retryable


async def test_a_stall_mid_stream_times_out_after_the_pieces_already_received(
    make: MakeProvider, openai_upstream: FakeOpenAI
) -> None:
    openai_upstream.enqueue(scripts.text("one two three", stall_after=1))
    stream = make(timeout=0.3).stream(PARAMS)
    assert (await anext(stream)).content == "one "
    with pytest.raises(base.ProviderTimeout):
        await anext(stream)


async def test_a_stream_cut_midway_raises_after_the_pieces_already_received(
    make: MakeProvider, openai_upstream: FakeOpenAI
) -> None:
    openai_upstream.enqueue(scripts.text("one two three", break_after=2))
    stream = make().stream(PARAMS)
    assert [(await anext(stream)).content, (await anext(stream)).content] == ["one ", "two "]
    with pytest.raises(base.ProviderUnavailable, match="cannot reach upstream") as caught:
        await anext(stream)
    assert caught.value.retryable


async def test_an_unreachable_upstream_is_unavailable(make: MakeProvider) -> None:
    with pytest.raises(base.ProviderUnavailable) as caught:
        await make(base_url="http://127.0.0.1:9/v1").complete(PARAMS)
    assert caught.value.status is None
    assert caught.value.retryable


async def test_a_keyless_endpoint_works_against_a_server_that_wants_no_key(
    fallback_upstream: FakeOpenAI,
) -> None:
    provider = OpenAIProvider(model="local", api_key=None, base_url=fallback_upstream.base_url)
    try:
        assert (await provider.complete(PARAMS)).content == "fallback here"
    finally:
        await provider.aclose()
