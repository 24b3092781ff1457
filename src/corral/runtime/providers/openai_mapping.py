"""OpenAI chat wire JSON (already decoded) -> our `Completion` and `Delta`. Pure; no I/O.

Used by the `openai` provider, which asks the SDK for plain decoded JSON instead of its
pydantic response models: building those models costs more than the rest of a call to a fast
upstream. So this module does the checking the models did, and only as much as we use: every
field we read must have the wire type (or be absent where the wire allows it), anything else
raises `Malformed` naming the field, never quoting upstream content. Unknown fields are ignored,
as OpenAI-compatible servers add their own.
"""

from __future__ import annotations

import json
from typing import Any

from corral.runtime.providers import base

_FINISH: dict[str, base.FinishReason] = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
    "content_filter": "content_filter",
}


class Malformed(ValueError):
    """The upstream's JSON does not have the shape of a chat completion (or chunk)."""


def completion_from(data: Any, model: str) -> base.Completion:
    """The first choice of a `chat.completion` object. `model` stands in when the upstream
    does not name the model that answered."""
    body = _object(data, "body")
    choices = _list(body.get("choices"), "choices")
    if not choices:
        raise Malformed("the answer has no choices")
    choice = _object(choices[0], "choices[0]")
    message = _object(choice.get("message"), "choices[0].message")
    calls = [
        _tool_call(call, index)
        for index, call in enumerate(_list(message.get("tool_calls"), "message.tool_calls"))
    ]
    answered_by = body.get("model")
    return base.Completion(
        content=_text(message.get("content"), "message.content"),
        tool_calls=[call for call in calls if call is not None],
        finish_reason=finish(choice.get("finish_reason")),
        usage=usage_from(body.get("usage")),
        model=answered_by if isinstance(answered_by, str) and answered_by else model,
    )


def delta_from(data: Any) -> base.Delta | None:
    """Our Delta for one `chat.completion.chunk`, or None for a chunk that carries nothing
    (the role-only head)."""
    chunk = _object(data, "chunk")
    usage = usage_from(chunk.get("usage"))
    choices = _list(chunk.get("choices"), "chunk.choices")
    if not choices:
        return base.Delta(usage=usage) if usage is not None else None
    choice = _object(choices[0], "chunk.choices[0]")
    delta = _object(choice.get("delta") or {}, "chunk.choices[0].delta")
    calls = [
        _tool_call_delta(fragment, position)
        for position, fragment in enumerate(_list(delta.get("tool_calls"), "delta.tool_calls"))
    ]
    content = _text(delta.get("content"), "delta.content") or None
    reason = choice.get("finish_reason")
    finish_reason = finish(reason) if reason else None
    if content is None and not calls and finish_reason is None and usage is None:
        return None
    return base.Delta(content=content, tool_calls=calls, finish_reason=finish_reason, usage=usage)


def finish(value: Any) -> base.FinishReason:
    """Our finish reason for a wire value; unknown or absent values count as "stop"."""
    return _FINISH.get(value, "stop") if isinstance(value, str) else "stop"


def usage_from(data: Any) -> base.Usage | None:
    """Token usage, or None when the upstream reported none."""
    if data is None:
        return None
    usage = _object(data, "usage")
    return base.Usage(
        prompt_tokens=_count(usage.get("prompt_tokens"), "usage.prompt_tokens"),
        completion_tokens=_count(usage.get("completion_tokens"), "usage.completion_tokens"),
    )


def _tool_call(data: Any, index: int) -> base.ToolCall | None:
    """A whole tool call, or None for a call of another type than "function"."""
    where = f"message.tool_calls[{index}]"
    call = _object(data, where)
    if call.get("type", "function") != "function":
        return None
    function = _object(call.get("function"), f"{where}.function")
    name = function.get("name")
    if not isinstance(name, str) or not name:
        raise Malformed(f"{where}.function.name is not a non-empty string")
    call_id = call.get("id")
    return base.ToolCall(
        id=call_id if isinstance(call_id, str) and call_id else f"call_{index}",
        name=name,
        arguments=_arguments(function.get("arguments"), f"{where}.function.arguments"),
    )


def _tool_call_delta(data: Any, position: int) -> base.ToolCallDelta:
    where = f"delta.tool_calls[{position}]"
    fragment = _object(data, where)
    index = fragment.get("index", position)
    if not isinstance(index, int) or isinstance(index, bool) or index < 0:
        raise Malformed(f"{where}.index is not a non-negative integer")
    function = _object(fragment.get("function") or {}, f"{where}.function")
    return base.ToolCallDelta(
        index=index,
        id=_text(fragment.get("id"), f"{where}.id") or None,
        name=_text(function.get("name"), f"{where}.function.name") or None,
        arguments=_arguments(function.get("arguments"), f"{where}.function.arguments"),
    )


def _arguments(value: Any, where: str) -> str:
    """The arguments' JSON text. Some OpenAI-compatible servers send the object itself."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    raise Malformed(f"{where} is neither a string nor an object")


def _object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise Malformed(f"{where} is not an object")
    return value


def _list(value: Any, where: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise Malformed(f"{where} is not an array")
    return value


def _text(value: Any, where: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise Malformed(f"{where} is not a string")


def _count(value: Any, where: str) -> int:
    if value is None:
        return 0
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise Malformed(f"{where} is not a non-negative integer")
    return value
