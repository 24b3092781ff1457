"""The `gemini` provider over real HTTP: the real google-genai SDK against the Gemini fake."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from corral.runtime.providers import base
from corral.runtime.providers.gemini import GeminiProvider
from corral.runtime.providers.gemini_mapping import SYNTHETIC_ID_PREFIX
from fakes import scripts
from fakes.gemini_server import FakeGemini

pytestmark = pytest.mark.anyio

SCHEMA = {"type": "object", "properties": {"order_id": {"type": "string"}}}
TOOLS = [
    {
        "type": "function",
        "function": {"name": "order_lookup", "description": "Look up", "parameters": SCHEMA},
    }
]
PARAMS = base.ChatParams(
    messages=[
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Where are orders 7 and 8?"},
    ],
    tools=TOOLS,
)

MakeProvider = Callable[..., GeminiProvider]


@pytest.fixture
async def make(gemini_upstream: FakeGemini) -> AsyncIterator[MakeProvider]:
    """Builds providers pointed at the fake (with its key) and closes them afterwards."""
    made: list[GeminiProvider] = []

    def build(**overrides: Any) -> GeminiProvider:
        options: dict[str, Any] = {
            "model": "gemini-test",
            "api_key": gemini_upstream.api_key,
            "base_url": gemini_upstream.base_url,
            "timeout": 5.0,
        }
        made.append(GeminiProvider(**(options | overrides)))
        return made[-1]

    yield build
    for provider in made:
        await provider.aclose()


async def collect(provider: GeminiProvider, params: base.ChatParams = PARAMS) -> list[base.Delta]:
    return [delta async for delta in provider.stream(params)]


def reassemble(deltas: list[base.Delta]) -> dict[int, base.ToolCallDelta]:
    calls: dict[int, base.ToolCallDelta] = {}
    for fragment in (f for d in deltas for f in d.tool_calls):
        assert fragment.index not in calls, "Gemini calls arrive whole, one fragment each"
        calls[fragment.index] = fragment
    return calls


async def test_complete_maps_text_usage_and_sends_system_instruction_tools_and_key(
    make: MakeProvider, gemini_upstream: FakeGemini
) -> None:
    gemini_upstream.enqueue(scripts.text("Both ship today.", usage=(20, 5)))

    answer = await make(temperature=0.4, max_tokens=77).complete(PARAMS)

    assert answer == base.Completion(
        content="Both ship today.",
        tool_calls=[],
        finish_reason="stop",
        usage=base.Usage(prompt_tokens=20, completion_tokens=5),
        model="gemini-test",
    )
    [sent] = gemini_upstream.requests
    assert sent.path.endswith("/models/gemini-test:generateContent")
    assert sent.headers["x-goog-api-key"] == gemini_upstream.api_key
    assert sent.body["systemInstruction"]["parts"] == [{"text": "You are terse."}]
    assert sent.body["contents"] == [
        {"role": "user", "parts": [{"text": "Where are orders 7 and 8?"}]}
    ]
    [declaration] = sent.body["tools"][0]["functionDeclarations"]
    assert declaration["name"] == "order_lookup"
    schema = declaration.get("parametersJsonSchema", declaration.get("parameters_json_schema"))
    assert schema == SCHEMA
    config = sent.body["generationConfig"]
    assert (config["temperature"], config["maxOutputTokens"]) == (0.4, 77)


async def test_function_calls_keep_gemini_ids_and_get_synthesized_ones_when_omitted(
    make: MakeProvider, gemini_upstream: FakeGemini
) -> None:
    gemini_upstream.enqueue(
        scripts.tool_calls(
            scripts.call("order_lookup", {"order_id": "7"}, id="gem-1"),
            scripts.call("order_lookup", {"order_id": "8"}),
        )
    )
    answer = await make().complete(PARAMS)
    assert answer.finish_reason == "tool_calls"
    first, second = answer.tool_calls
    assert first == base.ToolCall("gem-1", "order_lookup", '{"order_id":"7"}')
    assert second.id.startswith(SYNTHETIC_ID_PREFIX)
    assert json.loads(second.arguments) == {"order_id": "8"}


async def test_tool_results_go_back_as_function_responses_in_one_turn(
    make: MakeProvider, gemini_upstream: FakeGemini
) -> None:
    history = [
        *PARAMS.messages,
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "gem-1",
                    "type": "function",
                    "function": {"name": "order_lookup", "arguments": '{"order_id":"7"}'},
                },
                {
                    "id": f"{SYNTHETIC_ID_PREFIX}abc",
                    "type": "function",
                    "function": {"name": "order_lookup", "arguments": '{"order_id":"8"}'},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "gem-1", "content": "shipped"},
        {"role": "tool", "tool_call_id": f"{SYNTHETIC_ID_PREFIX}abc", "content": "packing"},
    ]
    await make().complete(base.ChatParams(messages=history, tools=TOOLS))

    contents = gemini_upstream.requests[0].body["contents"]
    assert [c["role"] for c in contents] == ["user", "model", "user"]
    assert [p["functionCall"] for p in contents[1]["parts"]] == [
        {"id": "gem-1", "name": "order_lookup", "args": {"order_id": "7"}},
        {"name": "order_lookup", "args": {"order_id": "8"}},
    ]
    assert [p["functionResponse"] for p in contents[2]["parts"]] == [
        {"id": "gem-1", "name": "order_lookup", "response": {"output": "shipped"}},
        {"name": "order_lookup", "response": {"output": "packing"}},
    ]


async def test_stream_yields_text_then_one_finish_with_usage(
    make: MakeProvider, gemini_upstream: FakeGemini
) -> None:
    gemini_upstream.enqueue(scripts.text("Both ship today.", usage=(20, 5)))
    deltas = await collect(make())
    assert "".join(d.content or "" for d in deltas) == "Both ship today."
    assert len([d for d in deltas if d.content]) == 3
    assert deltas[-1] == base.Delta(finish_reason="stop", usage=base.Usage(20, 5))
    assert all(d.finish_reason is None and d.usage is None for d in deltas[:-1])
    sent = gemini_upstream.requests[0]
    assert sent.path.endswith("/models/gemini-test:streamGenerateContent")
    assert "alt=sse" in sent.query


async def test_streamed_function_calls_get_stable_indexes_and_ids(
    make: MakeProvider, gemini_upstream: FakeGemini
) -> None:
    gemini_upstream.enqueue(
        scripts.tool_calls(
            scripts.call("order_lookup", {"order_id": "7"}),
            scripts.call("order_lookup", {"order_id": "8"}, id="gem-2"),
            content="Checking.",
            usage=(20, 9),
        )
    )
    deltas = await collect(make())
    calls = reassemble(deltas)
    assert sorted(calls) == [0, 1]
    assert calls[0].id is not None
    assert calls[0].id.startswith(SYNTHETIC_ID_PREFIX)
    assert calls[1].id == "gem-2"
    assert [json.loads(calls[i].arguments) for i in (0, 1)] == [
        {"order_id": "7"},
        {"order_id": "8"},
    ]
    assert "".join(d.content or "" for d in deltas) == "Checking."
    assert deltas[-1] == base.Delta(finish_reason="tool_calls", usage=base.Usage(20, 9))


@pytest.mark.parametrize(
    ("reply", "kind", "status", "retry_after"),
    [
        (scripts.error(500), base.ProviderUnavailable, 500, None),
        (scripts.error(503), base.ProviderUnavailable, 503, None),
        (scripts.error(429, retry_after=3), base.ProviderUnavailable, 429, 3.0),
        (scripts.error(400, "bad schema"), base.ProviderRejected, 400, None),
        (scripts.error(404, "no such model"), base.ProviderRejected, 404, None),
        (scripts.malformed(), base.ProviderUnavailable, None, None),
    ],
    ids=["500", "503", "429-retry-info", "400", "404", "malformed"],
)
@pytest.mark.parametrize("streaming", [False, True], ids=["complete", "stream"])
async def test_upstream_failures_become_provider_errors(
    make: MakeProvider,
    gemini_upstream: FakeGemini,
    reply: scripts.Reply,
    kind: type[base.ProviderError],
    status: int | None,
    retry_after: float | None,
    streaming: bool,
) -> None:
    gemini_upstream.enqueue(reply)
    provider = make()
    with pytest.raises(kind) as caught:
        await (collect(provider) if streaming else provider.complete(PARAMS))
    assert (caught.value.status, caught.value.retry_after) == (status, retry_after)
    assert caught.value.provider == "gemini"
    assert caught.value.retryable is (kind is base.ProviderUnavailable)
    assert len(gemini_upstream.requests) == 1, "the SDK must not retry on its own"


async def test_a_wrong_key_is_a_rejection(make: MakeProvider) -> None:
    with pytest.raises(base.ProviderRejected) as caught:
        await make(api_key="wrong-key").complete(PARAMS)
    assert caught.value.status == 401


@pytest.mark.parametrize("streaming", [False, True], ids=["complete", "stream"])
async def test_a_hanging_upstream_times_out_after_the_per_attempt_timeout(
    make: MakeProvider, gemini_upstream: FakeGemini, streaming: bool
) -> None:
    gemini_upstream.enqueue(scripts.hang())
    provider = make(timeout=0.3)
    with pytest.raises(base.ProviderTimeout):
        await (collect(provider) if streaming else provider.complete(PARAMS))


async def test_a_stream_cut_midway_raises_after_the_pieces_already_received(
    make: MakeProvider, gemini_upstream: FakeGemini
) -> None:
    gemini_upstream.enqueue(scripts.text("one two three", break_after=1))
    stream = make().stream(PARAMS)
    assert (await anext(stream)).content == "one "
    with pytest.raises(base.ProviderUnavailable) as caught:
        await anext(stream)
    assert caught.value.retryable


async def test_an_image_part_is_refused_before_anything_is_sent(
    make: MakeProvider, gemini_upstream: FakeGemini
) -> None:
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}
    params = base.ChatParams(messages=[{"role": "user", "content": [image]}])
    with pytest.raises(base.ProviderRejected, match="image_url") as caught:
        await make().complete(params)
    assert caught.value.status == 400
    assert gemini_upstream.requests == []
