"""OpenAI chat shapes <-> google-genai types, both directions, without a network."""

from __future__ import annotations

import json
from typing import Any

import pytest
from google.genai import types

from corral.runtime.providers import base
from corral.runtime.providers import gemini_mapping as gm

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "weather",
        "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


def assistant_calls(*calls: tuple[str, str, dict[str, Any]]) -> dict[str, Any]:
    return {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": i, "type": "function", "function": {"name": n, "arguments": json.dumps(a)}}
            for i, n, a in calls
        ],
    }


def response(
    parts: list[types.Part], finish: str | None = "STOP", usage: dict[str, int] | None = None
) -> types.GenerateContentResponse:
    candidate = types.Candidate(content=types.Content(role="model", parts=parts))
    if finish is not None:
        candidate.finish_reason = types.FinishReason(finish)
    meta = types.GenerateContentResponseUsageMetadata(**usage) if usage else None
    return types.GenerateContentResponse(candidates=[candidate], usage_metadata=meta)


def call_part(name: str, args: dict[str, Any], id: str | None = None) -> types.Part:
    return types.Part(function_call=types.FunctionCall(name=name, args=args, id=id))


def test_system_and_developer_messages_become_the_system_instruction() -> None:
    system, contents = gm.contents_from(
        [
            {"role": "system", "content": "Be brief."},
            {"role": "developer", "content": [{"type": "text", "text": "Use metric."}]},
            {
                "role": "user",
                "content": [{"type": "text", "text": "Hi "}, {"type": "text", "text": "there"}],
            },
        ]
    )
    assert system == "Be brief.\n\nUse metric."
    assert [(c.role, [p.text for p in c.parts or []]) for c in contents] == [("user", ["Hi there"])]


def test_a_tool_round_trip_becomes_function_call_and_grouped_function_response_turns() -> None:
    messages = [
        {"role": "user", "content": "Weather in Oslo and Rome?"},
        assistant_calls(
            ("gem-1", "weather", {"city": "Oslo"}), ("call_corral_ab", "weather", {"city": "Rome"})
        ),
        {"role": "tool", "tool_call_id": "gem-1", "content": "cold"},
        {"role": "tool", "tool_call_id": "call_corral_ab", "content": "warm"},
        {"role": "assistant", "content": "Oslo is cold, Rome warm."},
        {"role": "user", "content": "Thanks"},
    ]
    _, contents = gm.contents_from(messages)
    assert [c.role for c in contents] == ["user", "model", "user", "model", "user"]
    calls = [p.function_call for p in contents[1].parts or []]
    assert [(c.id, c.name, c.args) for c in calls if c] == [
        ("gem-1", "weather", {"city": "Oslo"}),
        (None, "weather", {"city": "Rome"}),  # our synthesized id is never sent to Gemini
    ]
    results = [p.function_response for p in contents[2].parts or []]
    assert [(r.id, r.name, r.response) for r in results if r] == [
        ("gem-1", "weather", {"output": "cold"}),
        (None, "weather", {"output": "warm"}),
    ]


def test_a_remembered_thought_signature_goes_back_with_its_function_call() -> None:
    signatures = gm.ThoughtSignatures()
    text, calls = gm.read_parts(
        [
            types.Part(
                function_call=types.FunctionCall(name="weather", args={}), thought_signature=b"sig"
            )
        ],
        signatures,
    )
    assert text == ""
    _, contents = gm.contents_from(
        [{"role": "user", "content": "?"}, assistant_calls((calls[0].id, "weather", {}))],
        signatures,
    )
    assert (contents[1].parts or [])[0].thought_signature == b"sig"


def test_thought_signatures_are_bounded_least_recently_used_first() -> None:
    signatures = gm.ThoughtSignatures(limit=2)
    signatures.remember("a", b"1")
    signatures.remember("b", b"2")
    signatures.remember("a", b"1")
    signatures.remember("c", b"3")
    assert len(signatures) == 2
    assert (signatures.get("a"), signatures.get("b"), signatures.get("c")) == (b"1", None, b"3")


@pytest.mark.parametrize(
    ("messages", "problem"),
    [
        (
            [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}],
            "image_url",
        ),
        ([{"role": "function", "content": "x"}], "role 'function'"),
        ([{"role": "system", "content": "only a system prompt"}], "at least one user message"),
    ],
    ids=["image-part", "legacy-role", "no-user-message"],
)
def test_input_gemini_cannot_take_is_refused_with_the_reason(
    messages: list[dict[str, Any]], problem: str
) -> None:
    with pytest.raises(gm.UnsupportedInput, match=problem):
        gm.contents_from(messages)


def test_openai_tools_become_function_declarations_with_their_json_schema() -> None:
    [tool] = gm.tools_from([WEATHER_TOOL])
    [declaration] = tool.function_declarations or []
    assert declaration.name == "weather"
    assert declaration.description == "Weather for a city"
    assert declaration.parameters_json_schema == WEATHER_TOOL["function"]["parameters"]


@pytest.mark.parametrize(
    ("choice", "mode", "names"),
    [
        ("none", "NONE", None),
        ("required", "ANY", None),
        ({"type": "function", "function": {"name": "weather"}}, "ANY", ["weather"]),
    ],
)
def test_tool_choice_becomes_the_function_calling_mode(
    choice: Any, mode: str, names: list[str] | None
) -> None:
    config = gm.tool_config_from(choice)
    assert config is not None
    assert config.function_calling_config is not None
    assert config.function_calling_config.mode == types.FunctionCallingConfigMode(mode)
    assert config.function_calling_config.allowed_function_names == names


def test_auto_tool_choice_leaves_gemini_its_default() -> None:
    assert gm.tool_config_from("auto") is None
    assert gm.tool_config_from(None) is None


def test_config_takes_request_values_over_endpoint_defaults() -> None:
    params = base.ChatParams(messages=[], tools=[WEATHER_TOOL], temperature=0.2, stop=["END"])
    config = gm.config_from(params, "sys", temperature=0.9, max_tokens=64)
    assert (config.temperature, config.max_output_tokens, config.stop_sequences) == (
        0.2,
        64,
        ["END"],
    )
    assert config.system_instruction == "sys"
    assert config.tools
    assert config.automatic_function_calling is not None
    assert config.automatic_function_calling.disable is True


def test_completion_keeps_gemini_ids_and_synthesizes_missing_ones() -> None:
    answer = gm.completion_from(
        response(
            [
                types.Part(text="Checking"),
                types.Part(text="secret musing", thought=True),
                call_part("weather", {"city": "Oslo"}, id="gem-7"),
                call_part("weather", {"city": "Rome"}),
                call_part("weather", {"city": "Pisa"}),
            ],
            usage={
                "prompt_token_count": 11,
                "candidates_token_count": 5,
                "thoughts_token_count": 3,
            },
        ),
        "gemini-2.5-flash",
    )
    assert answer.content == "Checking"
    assert answer.finish_reason == "tool_calls"
    assert answer.usage == base.Usage(prompt_tokens=11, completion_tokens=8)
    ids = [call.id for call in answer.tool_calls]
    assert ids[0] == "gem-7"
    assert all(i.startswith(gm.SYNTHETIC_ID_PREFIX) for i in ids[1:])
    assert len(set(ids)) == 3
    assert [json.loads(c.arguments) for c in answer.tool_calls] == [
        {"city": "Oslo"},
        {"city": "Rome"},
        {"city": "Pisa"},
    ]


@pytest.mark.parametrize(
    ("finish", "expected"),
    [
        ("STOP", "stop"),
        ("MAX_TOKENS", "length"),
        ("SAFETY", "content_filter"),
        ("RECITATION", "content_filter"),
        ("OTHER", "stop"),
        (None, "stop"),
    ],
)
def test_finish_reasons_map_to_openai_values(finish: str | None, expected: str) -> None:
    assert (
        gm.completion_from(response([types.Part(text="x")], finish), "m").finish_reason == expected
    )


def test_a_blocked_prompt_is_a_content_filter_finish_with_no_text() -> None:
    blocked = types.GenerateContentResponse(
        prompt_feedback=types.GenerateContentResponsePromptFeedback(
            block_reason=types.BlockedReason.SAFETY
        )
    )
    answer = gm.completion_from(blocked, "m")
    assert (answer.content, answer.finish_reason) == (None, "content_filter")


def test_stream_gives_each_call_a_stable_index_and_holds_usage_for_the_end() -> None:
    mapper = gm.StreamMapper()
    first = mapper.feed(response([types.Part(text="Let me ")], None, {"prompt_token_count": 4}))
    second = mapper.feed(
        response(
            [
                call_part("weather", {"city": "Oslo"}),
                call_part("weather", {"city": "Rome"}, id="g2"),
            ],
            None,
            {"prompt_token_count": 4, "candidates_token_count": 6},
        )
    )
    third = mapper.feed(
        response(
            [call_part("time", {})], "STOP", {"prompt_token_count": 4, "candidates_token_count": 9}
        )
    )
    assert first == base.Delta(content="Let me ")
    assert second is not None
    assert third is not None
    calls = second.tool_calls + third.tool_calls
    assert [(c.index, c.name) for c in calls] == [(0, "weather"), (1, "weather"), (2, "time")]
    assert calls[1].id == "g2"
    assert calls[0].id
    assert calls[0].id.startswith(gm.SYNTHETIC_ID_PREFIX)
    assert calls[0].arguments == '{"city":"Oslo"}'
    assert mapper.end() == base.Delta(
        finish_reason="tool_calls", usage=base.Usage(prompt_tokens=4, completion_tokens=9)
    )


def test_stream_pieces_with_nothing_to_say_yield_no_delta() -> None:
    mapper = gm.StreamMapper()
    assert mapper.feed(response([types.Part(text="")], None)) is None
    assert mapper.feed(types.GenerateContentResponse()) is None


def test_a_stream_without_a_finish_reason_is_malformed() -> None:
    mapper = gm.StreamMapper()
    mapper.feed(response([types.Part(text="cut")], None))
    with pytest.raises(ValueError, match="without a finish reason"):
        mapper.end()
