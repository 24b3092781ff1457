"""The chat wire schemas: what is accepted, how errors name the field, how answers encode."""

from __future__ import annotations

import json
from typing import Any

import pytest
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from corral.runtime import errors, protocol
from corral.runtime.providers import base

IDENT = protocol.Ident("chatcmpl-1", 1700000000, "support")


def body(**fields: Any) -> bytes:
    return json.dumps(
        {"model": "support", "messages": [{"role": "user", "content": "hi"}], **fields}
    ).encode()


def test_a_minimal_request_parses_with_openai_defaults() -> None:
    request = protocol.parse_chat_request(body())

    assert (request.model, request.stream, request.include_usage) == ("support", False, False)
    assert request.completion_limit is None


def test_unknown_fields_are_ignored_like_openai_compatible_servers_do() -> None:
    request = protocol.parse_chat_request(body(seed=3, logprobs=False, metadata={"a": "b"}))

    assert request.model == "support"


def test_max_completion_tokens_wins_over_max_tokens() -> None:
    request = protocol.parse_chat_request(body(max_tokens=10, max_completion_tokens=20))

    assert request.completion_limit == 20


@pytest.mark.parametrize(
    ("raw", "param"),
    [
        (body(temperature=3), "temperature"),
        (body(n=2), "n"),
        (body(messages=[]), "messages"),
        (body(messages=[{"role": "user"}]), "messages[0].content"),
        (body(messages=[{"role": "user", "content": 1}]), "messages[0].content"),
        (body(messages=[{"role": "tool", "content": "x"}]), "messages[0].tool_call_id"),
        (
            body(messages=[{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]),
            "messages[0].content[0].image_url.url",
        ),
        (body(stop=["a", "b", "c", "d", "e"]), "stop"),
        (json.dumps({"messages": [{"role": "user", "content": "x"}]}).encode(), "model"),
    ],
)
def test_an_invalid_field_is_a_422_naming_it(raw: bytes, param: str) -> None:
    with pytest.raises(errors.InvalidField) as caught:
        protocol.parse_chat_request(raw)

    assert caught.value.status == 422
    assert caught.value.param == param


@pytest.mark.parametrize("raw", [b"", b"{", b"[1, 2]", b'"text"', b"\xff\xfe"])
def test_a_body_that_is_not_a_json_object_is_a_400(raw: bytes) -> None:
    with pytest.raises(errors.InvalidRequest) as caught:
        protocol.parse_chat_request(raw)

    assert caught.value.status == 400


def test_client_tools_are_refused_because_tools_live_on_the_server() -> None:
    tool = {"type": "function", "function": {"name": "f"}}

    with pytest.raises(errors.InvalidRequest) as caught:
        protocol.parse_chat_request(body(tools=[tool]))

    assert caught.value.param == "tools"


def test_messages_reach_the_provider_in_plain_openai_shape() -> None:
    text = [{"type": "text", "text": "be "}, {"type": "text", "text": "brief"}]
    mixed = [{"type": "text", "text": "look"}, {"type": "image_url", "image_url": {"url": "x"}}]
    call = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    request = protocol.parse_chat_request(
        body(
            messages=[
                {"role": "developer", "content": text},
                {"role": "user", "content": mixed},
                {"role": "assistant", "content": None, "tool_calls": [call]},
                {"role": "tool", "tool_call_id": "c1", "content": "42"},
            ]
        )
    )

    assert protocol.to_provider_messages(request.messages) == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": mixed},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "content": "42", "tool_call_id": "c1"},
    ]


def test_a_whole_answer_is_a_valid_sdk_chat_completion() -> None:
    raw = protocol.completion_body(
        IDENT, content="hello", finish_reason="stop", usage=base.Usage(3, 2)
    )

    parsed = ChatCompletion.model_validate_json(raw)
    assert parsed.choices[0].message.content == "hello"
    assert parsed.usage is not None
    assert parsed.usage.total_tokens == 5


def test_stream_events_are_valid_sdk_chunks() -> None:
    encoder = protocol.ChunkEncoder(IDENT)
    events = [encoder.role(), encoder.content('say "hi"\n'), encoder.finish("length")]
    events.append(encoder.usage(base.Usage(4, 1)))

    chunks = []
    for event in events:
        assert event.startswith(b"data: ")
        assert event.endswith(b"\n\n")
        chunks.append(ChatCompletionChunk.model_validate_json(event[6:-2]))
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[1].choices[0].delta.content == 'say "hi"\n'
    assert chunks[2].choices[0].finish_reason == "length"
    assert chunks[3].choices == []
    assert chunks[3].usage is not None
    assert chunks[3].usage.prompt_tokens == 4
    assert {c.id for c in chunks} == {"chatcmpl-1"}
    assert encoder.DONE == b"data: [DONE]\n\n"


def test_param_of_drops_union_tags_but_keeps_fields_named_like_them() -> None:
    loc = ("messages", 2, "user", "content", "list[...]", 0, "text", "text")

    assert protocol.param_of(loc) == "messages[2].content[0].text"
    assert protocol.param_of(("user",)) == "user"
