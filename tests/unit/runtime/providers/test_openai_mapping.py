"""Decoded OpenAI chat JSON -> Completion / Delta, and what counts as malformed."""

from __future__ import annotations

from typing import Any

import pytest

from corral.runtime.providers import base
from corral.runtime.providers import openai_mapping as om


def completion(message: dict[str, Any], **fields: Any) -> dict[str, Any]:
    choice = {"index": 0, "message": message, "finish_reason": fields.pop("finish", "stop")}
    return {"id": "c1", "object": "chat.completion", "model": "gpt-x", "choices": [choice]} | fields


def chunk(delta: dict[str, Any] | None = None, finish: str | None = None, **fields: Any) -> Any:
    choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
    return {"id": "c1", "object": "chat.completion.chunk", "choices": choices} | fields


def test_a_text_answer_keeps_content_finish_usage_and_the_answering_model() -> None:
    data = completion(
        {"role": "assistant", "content": "Hi."},
        usage={"prompt_tokens": 7, "completion_tokens": 2, "total_tokens": 9},
    )
    assert om.completion_from(data, "requested") == base.Completion(
        content="Hi.",
        tool_calls=[],
        finish_reason="stop",
        usage=base.Usage(7, 2),
        model="gpt-x",
    )


def test_the_requested_model_stands_in_when_the_answer_names_none_and_usage_may_be_absent() -> None:
    data = completion({"role": "assistant", "content": "Hi."})
    del data["model"]
    answer = om.completion_from(data, "requested")
    assert (answer.model, answer.usage) == ("requested", None)


def test_function_calls_are_kept_in_order_and_other_call_types_dropped() -> None:
    data = completion(
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "a", "type": "function", "function": {"name": "f", "arguments": "{}"}},
                {"id": "b", "type": "custom", "custom": {"name": "g", "input": "x"}},
                {"type": "function", "function": {"name": "h", "arguments": {"k": "é"}}},
            ],
        },
        finish="tool_calls",
    )
    answer = om.completion_from(data, "m")
    assert answer.finish_reason == "tool_calls"
    assert answer.tool_calls == [
        base.ToolCall(id="a", name="f", arguments="{}"),
        # No id from the server: a stable one by position; an object argument as JSON text.
        base.ToolCall(id="call_2", name="h", arguments='{"k":"é"}'),
    ]


@pytest.mark.parametrize(
    ("wire", "ours"),
    [
        ("stop", "stop"),
        ("length", "length"),
        ("tool_calls", "tool_calls"),
        ("function_call", "tool_calls"),
        ("content_filter", "content_filter"),
        ("eos", "stop"),
        (None, "stop"),
        (3, "stop"),
    ],
)
def test_finish_reasons_map_to_ours_and_unknown_ones_count_as_stop(wire: Any, ours: str) -> None:
    assert om.finish(wire) == ours


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ([], "body"),
        ({"choices": "x"}, "choices"),
        ({"choices": []}, "no choices"),
        ({"choices": [None]}, r"choices\[0\]"),
        ({"choices": [{"finish_reason": "stop"}]}, r"choices\[0\].message"),
        (completion({"content": 5}), "message.content"),
        (completion({"content": None, "tool_calls": {}}), "message.tool_calls"),
        (completion({"tool_calls": [{"function": {"arguments": "{}"}}]}), "function.name"),
        (completion({"tool_calls": [{"function": {"name": "f", "arguments": 1}}]}), "arguments"),
        (completion({"content": "x"}, usage={"prompt_tokens": "7"}), "usage.prompt_tokens"),
        (completion({"content": "x"}, usage={"completion_tokens": -1}), "completion_tokens"),
        (completion({"content": "x"}, usage=[1, 2]), "usage"),
    ],
    ids=[
        "not-an-object",
        "choices-not-array",
        "no-choices",
        "choice-not-object",
        "no-message",
        "content-not-text",
        "tool-calls-not-array",
        "call-without-name",
        "arguments-not-text",
        "tokens-not-int",
        "tokens-negative",
        "usage-not-object",
    ],
)
def test_a_malformed_answer_is_refused_naming_the_field(data: Any, field: str) -> None:
    with pytest.raises(om.Malformed, match=field):
        om.completion_from(data, "m")


def test_the_role_only_head_chunk_carries_nothing() -> None:
    assert om.delta_from(chunk({"role": "assistant", "content": ""})) is None


def test_a_content_chunk_and_a_finish_chunk_become_deltas() -> None:
    assert om.delta_from(chunk({"content": "Hel"})) == base.Delta(content="Hel")
    assert om.delta_from(chunk({}, "length")) == base.Delta(finish_reason="length")


def test_the_usage_chunk_without_choices_carries_only_the_usage() -> None:
    usage = {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}
    assert om.delta_from(chunk(None, usage=usage)) == base.Delta(usage=base.Usage(3, 4))
    assert om.delta_from(chunk(None, usage=None)) is None


def test_tool_call_fragments_keep_their_index_id_name_and_argument_pieces() -> None:
    head = {"index": 1, "id": "call_b", "type": "function", "function": {"name": "f"}}
    tail = {"index": 1, "function": {"arguments": '{"a":'}}
    assert om.delta_from(chunk({"tool_calls": [head]})) == base.Delta(
        tool_calls=[base.ToolCallDelta(index=1, id="call_b", name="f", arguments="")]
    )
    assert om.delta_from(chunk({"tool_calls": [tail]})) == base.Delta(
        tool_calls=[base.ToolCallDelta(index=1, arguments='{"a":')]
    )


def test_a_fragment_without_an_index_takes_its_position() -> None:
    fragments = [{"function": {"name": "f"}}, {"function": {"name": "g"}}]
    delta = om.delta_from(chunk({"tool_calls": fragments}))
    assert delta is not None
    assert [(f.index, f.name) for f in delta.tool_calls] == [(0, "f"), (1, "g")]


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ("[DONE]", "chunk"),
        ({"choices": {}}, "chunk.choices"),
        (chunk({"content": ["a"]}), "delta.content"),
        (chunk({"tool_calls": [{"index": "0"}]}), "index"),
        (chunk({"tool_calls": [{"index": True}]}), "index"),
        (chunk({"tool_calls": [{"index": 0, "function": "f"}]}), "function"),
        (chunk(None, usage={"prompt_tokens": 1.5}), "prompt_tokens"),
    ],
    ids=[
        "not-an-object",
        "choices-not-array",
        "content-not-text",
        "index-text",
        "index-bool",
        "function-not-object",
        "tokens-float",
    ],
)
def test_a_malformed_chunk_is_refused_naming_the_field(data: Any, field: str) -> None:
    with pytest.raises(om.Malformed, match=field):
        om.delta_from(data)
