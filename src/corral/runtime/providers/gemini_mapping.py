"""Translation between OpenAI chat shapes and Gemini's `google-genai` types. Pure; no I/O.

OpenAI -> Gemini: system/developer messages become `system_instruction`; user text becomes
user parts; assistant `tool_calls` become `function_call` parts; `tool` messages become
`function_response` parts (consecutive ones grouped in one turn, as Gemini wants for parallel
calls); OpenAI tools become function declarations with their JSON Schema as-is.
Gemini -> OpenAI: text and function calls of the first candidate, finish reasons, usage.
Gemini may omit function-call ids, so we synthesize `call_corral_<hex>` ids (never sent back),
and keep Gemini's thought signatures by call id so the next turn can return them.
Called by `gemini.GeminiProvider`.
"""

from __future__ import annotations

import collections
import json
import secrets
from collections.abc import Iterable
from typing import Any

from google.genai import types

from corral.runtime.providers import base

SYNTHETIC_ID_PREFIX = "call_corral_"

_CONTENT_FILTER = {
    "SAFETY",
    "RECITATION",
    "BLOCKLIST",
    "PROHIBITED_CONTENT",
    "SPII",
    "IMAGE_SAFETY",
    "IMAGE_PROHIBITED_CONTENT",
    "IMAGE_RECITATION",
    "MODEL_ARMOR",
}


class UnsupportedInput(ValueError):
    """The request uses something this provider cannot send to Gemini (e.g. an image part)."""


class ThoughtSignatures:
    """Gemini's opaque thought signatures by tool-call id, bounded (least recently used out).

    Thinking models return a signature with each function call and want it back with that
    call in the next turn; the OpenAI shapes have no place for it, so we keep it here."""

    def __init__(self, limit: int = 1024) -> None:
        self._limit = limit
        self._items: collections.OrderedDict[str, bytes] = collections.OrderedDict()

    def remember(self, call_id: str, signature: bytes) -> None:
        self._items[call_id] = signature
        self._items.move_to_end(call_id)
        while len(self._items) > self._limit:
            self._items.popitem(last=False)

    def get(self, call_id: str) -> bytes | None:
        return self._items.get(call_id)

    def __len__(self) -> int:
        return len(self._items)


def synthesize_id() -> str:
    return SYNTHETIC_ID_PREFIX + secrets.token_hex(12)


# -- OpenAI -> Gemini ------------------------------------------------------------------------


def config_from(
    params: base.ChatParams,
    system: str | None,
    *,
    temperature: float | None = None,
    max_tokens: int | None = None,
) -> types.GenerateContentConfig:
    """Generation settings; the request's values win over the endpoint's defaults, except
    `max_tokens`, where the endpoint's is an upper bound."""
    tools = tools_from(params.tools)
    return types.GenerateContentConfig(
        system_instruction=system,
        temperature=params.temperature if params.temperature is not None else temperature,
        top_p=params.top_p,
        max_output_tokens=base.completion_bound(params.max_tokens, max_tokens),
        stop_sequences=params.stop or None,
        tools=tools or None,
        tool_config=tool_config_from(params.tool_choice) if tools else None,
        automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
    )


def contents_from(
    messages: Iterable[dict[str, Any]], signatures: ThoughtSignatures | None = None
) -> tuple[str | None, list[types.Content]]:
    """(system instruction, contents) for a list of OpenAI messages."""
    system: list[str] = []
    contents: list[types.Content] = []
    names: dict[str, str] = {}  # tool_call_id -> function name, for function_response parts
    for message in messages:
        role = message.get("role")
        if role in ("system", "developer"):
            system.append(text_of(message.get("content")))
        elif role == "user":
            _append(contents, "user", [types.Part(text=text_of(message.get("content")))])
        elif role == "assistant":
            parts = _assistant_parts(message, names, signatures)
            if parts:
                _append(contents, "model", parts)
        elif role == "tool":
            call_id = str(message.get("tool_call_id") or "")
            response = types.FunctionResponse(
                id=_wire_id(call_id),
                name=names.get(call_id) or str(message.get("name") or "tool"),
                response={"output": text_of(message.get("content"))},
            )
            _append(contents, "user", [types.Part(function_response=response)])
        else:
            raise UnsupportedInput(f"message role {role!r} is not supported by the gemini provider")
    if not contents:
        raise UnsupportedInput("the gemini provider needs at least one user message")
    return ("\n\n".join(system) if system else None), contents


def text_of(content: Any) -> str:
    """The text of an OpenAI message content: a string or a list of text parts."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for part in content:
            if not isinstance(part, dict) or part.get("type") != "text":
                kind = part.get("type") if isinstance(part, dict) else type(part).__name__
                raise UnsupportedInput(f"content part {kind!r} is not supported by gemini here")
            texts.append(str(part.get("text", "")))
        return "".join(texts)
    raise UnsupportedInput(f"message content of type {type(content).__name__} is not supported")


def tools_from(tools: Iterable[dict[str, Any]]) -> list[types.Tool]:
    declarations = [
        types.FunctionDeclaration(
            name=function["name"],
            description=function.get("description"),
            parameters_json_schema=function.get("parameters"),
        )
        for tool in tools
        if tool.get("type", "function") == "function"
        for function in [tool["function"]]
    ]
    return [types.Tool(function_declarations=declarations)] if declarations else []


def tool_config_from(choice: str | dict[str, Any] | None) -> types.ToolConfig | None:
    """OpenAI `tool_choice` as Gemini's function-calling mode."""
    if choice is None or choice == "auto":
        return None
    if choice == "none":
        mode, names = types.FunctionCallingConfigMode.NONE, None
    elif choice == "required":
        mode, names = types.FunctionCallingConfigMode.ANY, None
    elif isinstance(choice, dict) and isinstance(choice.get("function"), dict):
        mode, names = types.FunctionCallingConfigMode.ANY, [str(choice["function"]["name"])]
    else:
        raise UnsupportedInput(f"tool_choice {choice!r} is not supported")
    config = types.FunctionCallingConfig(mode=mode, allowed_function_names=names)
    return types.ToolConfig(function_calling_config=config)


def _assistant_parts(
    message: dict[str, Any], names: dict[str, str], signatures: ThoughtSignatures | None
) -> list[types.Part]:
    parts: list[types.Part] = []
    text = text_of(message.get("content"))
    if text:
        parts.append(types.Part(text=text))
    for call in message.get("tool_calls") or []:
        function = call.get("function") or {}
        call_id = str(call.get("id") or "")
        names[call_id] = str(function.get("name", ""))
        function_call = types.FunctionCall(
            id=_wire_id(call_id), name=names[call_id], args=_args(function.get("arguments"))
        )
        signature = signatures.get(call_id) if signatures is not None else None
        parts.append(types.Part(function_call=function_call, thought_signature=signature))
    return parts


def _append(contents: list[types.Content], role: str, parts: list[types.Part]) -> None:
    """Add a turn, merging it into the previous one when role and kind match (Gemini wants
    turns to alternate, and the responses to parallel calls together)."""
    if contents and contents[-1].role == role and contents[-1].parts:
        previous = contents[-1].parts
        if _is_response(previous[-1]) == _is_response(parts[0]):
            previous.extend(parts)
            return
    contents.append(types.Content(role=role, parts=parts))


def _is_response(part: types.Part) -> bool:
    return part.function_response is not None


def _wire_id(call_id: str) -> str | None:
    """The id to send to Gemini: ours (synthesized) or empty ids are not sent."""
    if not call_id or call_id.startswith(SYNTHETIC_ID_PREFIX):
        return None
    return call_id


def _args(arguments: Any) -> dict[str, Any]:
    if isinstance(arguments, dict):
        return arguments
    try:
        parsed = json.loads(arguments or "{}")
    except (TypeError, ValueError):
        return {"arguments": arguments}
    return parsed if isinstance(parsed, dict) else {"value": parsed}


# -- Gemini -> OpenAI ------------------------------------------------------------------------


def finish_from(reason: types.FinishReason | str | None, has_calls: bool) -> base.FinishReason:
    if has_calls:
        return "tool_calls"
    value = reason.value if isinstance(reason, types.FinishReason) else reason
    if value == "MAX_TOKENS":
        return "length"
    if value in _CONTENT_FILTER:
        return "content_filter"
    return "stop"


def usage_from(meta: types.GenerateContentResponseUsageMetadata | None) -> base.Usage | None:
    if meta is None:
        return None
    prompt = (meta.prompt_token_count or 0) + (meta.tool_use_prompt_token_count or 0)
    completion = (meta.candidates_token_count or 0) + (meta.thoughts_token_count or 0)
    return base.Usage(prompt_tokens=prompt, completion_tokens=completion)


def read_parts(
    parts: Iterable[types.Part], signatures: ThoughtSignatures | None = None
) -> tuple[str, list[base.ToolCall]]:
    """(answer text, function calls) of a candidate's parts; thoughts are left out."""
    texts: list[str] = []
    calls: list[base.ToolCall] = []
    for part in parts:
        if part.function_call is not None:
            call = part.function_call
            call_id = call.id or synthesize_id()
            if part.thought_signature and signatures is not None:
                signatures.remember(call_id, part.thought_signature)
            arguments = json.dumps(call.args or {}, separators=(",", ":"))
            calls.append(base.ToolCall(id=call_id, name=call.name or "", arguments=arguments))
        elif part.text and not part.thought:
            texts.append(part.text)
    return "".join(texts), calls


def completion_from(
    response: types.GenerateContentResponse,
    model: str,
    signatures: ThoughtSignatures | None = None,
) -> base.Completion:
    usage = usage_from(response.usage_metadata)
    model_name = response.model_version or model
    candidate = response.candidates[0] if response.candidates else None
    if candidate is None:
        if response.prompt_feedback is not None and response.prompt_feedback.block_reason:
            return base.Completion(None, [], "content_filter", usage, model_name)
        raise ValueError("Gemini answer has no candidates")
    parts = candidate.content.parts if candidate.content and candidate.content.parts else []
    text, calls = read_parts(parts, signatures)
    return base.Completion(
        content=text or None,
        tool_calls=calls,
        finish_reason=finish_from(candidate.finish_reason, bool(calls)),
        usage=usage,
        model=model_name,
    )


class StreamMapper:
    """Turns the GenerateContentResponse pieces of one stream into Deltas.

    Function calls get a stable `index` in order of arrival. Gemini repeats cumulative usage on
    every piece, so usage and the finish reason are held back for the final Delta (`end()`)."""

    def __init__(self, signatures: ThoughtSignatures | None = None) -> None:
        self._signatures = signatures
        self._calls = 0
        self._finish: types.FinishReason | str | None = None
        self._usage: base.Usage | None = None

    def feed(self, response: types.GenerateContentResponse) -> base.Delta | None:
        usage = usage_from(response.usage_metadata)
        if usage is not None:
            self._usage = usage
        candidate = response.candidates[0] if response.candidates else None
        if candidate is None:
            feedback = response.prompt_feedback
            if feedback is not None and feedback.block_reason:
                self._finish = "SAFETY"
            return None
        if candidate.finish_reason is not None:
            self._finish = candidate.finish_reason
        parts = candidate.content.parts if candidate.content and candidate.content.parts else []
        text, calls = read_parts(parts, self._signatures)
        deltas = [
            base.ToolCallDelta(
                index=self._calls + i, id=call.id, name=call.name, arguments=call.arguments
            )
            for i, call in enumerate(calls)
        ]
        self._calls += len(calls)
        if not text and not deltas:
            return None
        return base.Delta(content=text or None, tool_calls=deltas)

    def end(self) -> base.Delta:
        """The closing Delta; raises ValueError if Gemini never said it had finished."""
        if self._finish is None:
            raise ValueError("Gemini stream ended without a finish reason")
        return base.Delta(
            finish_reason=finish_from(self._finish, self._calls > 0), usage=self._usage
        )
