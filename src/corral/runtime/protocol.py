"""Wire schemas of the OpenAI chat API as this server speaks it, and fast encoders for answers.

Requests are validated once, from the raw body, by `parse_chat_request` (400 for a body that is
not JSON, 422 with `param` naming the field for a wrong field). Answers are built as plain
dicts/bytes: `completion_body` for a whole answer, `ChunkEncoder` for the SSE stream (the
fixed part of every chunk is encoded once per stream). The response models below only document
the OpenAPI schema. Called by the serving layer; pure, no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import pydantic_core
from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationError

from corral.runtime import errors
from corral.runtime.providers import base

MAX_STOP = 4
# A request header: with a true value, a stream also reports the agent's activity (see
# `ChunkEncoder.activity`). Ordinary OpenAI clients never send it and never see the chunks.
ACTIVITY_HEADER = "x-corral-activity"


class Wire(BaseModel):
    """Base of request models: unknown fields (logprobs, seed, metadata, ...) are ignored."""

    model_config = ConfigDict(extra="ignore")


class TextPart(Wire):
    type: Literal["text"]
    text: str


class ImageUrl(Wire):
    url: str = Field(min_length=1)
    detail: Literal["auto", "low", "high"] | None = None


class ImagePart(Wire):
    type: Literal["image_url"]
    image_url: ImageUrl


UserPart = Annotated[TextPart | ImagePart, Field(discriminator="type")]


class FunctionCall(Wire):
    name: str = Field(min_length=1, max_length=64)
    arguments: str


class ToolCallIn(Wire):
    id: str = Field(min_length=1, max_length=256)
    type: Literal["function"] = "function"
    function: FunctionCall


class SystemMessage(Wire):
    role: Literal["system"]
    content: str | list[TextPart]
    name: str | None = None


class DeveloperMessage(Wire):
    role: Literal["developer"]
    content: str | list[TextPart]
    name: str | None = None


class UserMessage(Wire):
    role: Literal["user"]
    content: str | list[UserPart]
    name: str | None = None


class AssistantMessage(Wire):
    role: Literal["assistant"]
    content: str | list[TextPart] | None = None
    tool_calls: list[ToolCallIn] | None = None
    name: str | None = None


class ToolMessage(Wire):
    role: Literal["tool"]
    content: str | list[TextPart]
    tool_call_id: str = Field(min_length=1, max_length=256)


Message = Annotated[
    SystemMessage | DeveloperMessage | UserMessage | AssistantMessage | ToolMessage,
    Field(discriminator="role"),
]


class StreamOptions(Wire):
    include_usage: StrictBool = False


class ChatCompletionRequest(Wire):
    """POST /v1/chat/completions. `model` is the agent's name."""

    model: str = Field(min_length=1, max_length=256)
    messages: list[Message] = Field(min_length=1, max_length=4096)
    # Strict: `"stream": "yes"` is a client's mistake to hear about, not a stream to start.
    stream: StrictBool = False
    stream_options: StreamOptions | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    max_tokens: int | None = Field(default=None, ge=1, le=1_000_000)
    max_completion_tokens: int | None = Field(default=None, ge=1, le=1_000_000)
    stop: str | list[str] | None = Field(default=None)
    n: int | None = Field(default=None, ge=1, le=1, description="Only 1 is supported.")
    tools: list[dict[str, Any]] | None = Field(
        default=None, description="Not accepted: the agent's tools are configured server-side."
    )
    user: str | None = Field(default=None, max_length=256)

    @property
    def completion_limit(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens

    @property
    def include_usage(self) -> bool:
        return self.stream_options is not None and self.stream_options.include_usage

    def stop_list(self) -> list[str] | None:
        if self.stop is None:
            return None
        return [self.stop] if isinstance(self.stop, str) else list(self.stop)


_FIELD_NAMES = frozenset(
    name
    for model in (
        ChatCompletionRequest, StreamOptions, SystemMessage, DeveloperMessage, UserMessage,
        AssistantMessage, ToolMessage, TextPart, ImagePart, ImageUrl, ToolCallIn, FunctionCall,
    )
    for name in model.model_fields
)  # fmt: skip


_TAGS = frozenset({"system", "developer", "user", "assistant", "tool", "text", "image_url"})


def parse_chat_request(body: bytes) -> ChatCompletionRequest:
    """Validate a raw body. Raises InvalidRequest (not JSON) or InvalidField (bad field)."""
    try:
        raw = pydantic_core.from_json(body)
    except ValueError as err:
        raise errors.InvalidRequest(f"the body is not valid JSON: {err}") from err
    if not isinstance(raw, dict):
        raise errors.InvalidRequest("the body must be a JSON object")
    try:
        request = ChatCompletionRequest.model_validate(raw)
    except ValidationError as err:
        # Of a union's alternatives, the one that got furthest says best what is wrong.
        deepest = max(err.errors(include_url=False), key=lambda e: len(e["loc"]))
        param = param_of(deepest["loc"])
        raise errors.InvalidField(f"{param or 'body'}: {deepest['msg']}", param=param) from err
    stop = request.stop_list()
    if stop is not None and len(stop) > MAX_STOP:
        raise errors.InvalidField(f"stop: at most {MAX_STOP} sequences", param="stop")
    if request.tools:
        raise errors.InvalidRequest(
            "this agent's tools are configured on the server; requests may not add tools",
            param="tools",
        )
    return request


def param_of(loc: Sequence[int | str]) -> str | None:
    """`('messages', 0, 'user', 'content', 'str')` -> `messages[0].content`: union tags (the
    role or part type right after an index, member type names) dropped, fields kept."""
    out = ""
    previous: int | str | None = None
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in _FIELD_NAMES and not (isinstance(previous, int) and part in _TAGS):
            out += f".{part}" if out else part
        previous = part
    return out or None


def to_provider_messages(messages: Sequence[Any]) -> list[dict[str, Any]]:
    """Client messages in the provider's OpenAI shape: developer -> system, text parts joined."""
    return [_message_dict(m) for m in messages]


def _message_dict(message: Any) -> dict[str, Any]:
    role = "system" if message.role == "developer" else message.role
    out: dict[str, Any] = {"role": role, "content": _content(message.content)}
    if isinstance(message, AssistantMessage) and message.tool_calls:
        out["tool_calls"] = [
            {
                "id": call.id,
                "type": "function",
                "function": {"name": call.function.name, "arguments": call.function.arguments},
            }
            for call in message.tool_calls
        ]
    if isinstance(message, ToolMessage):
        out["tool_call_id"] = message.tool_call_id
    name = getattr(message, "name", None)
    if name:
        out["name"] = name
    return out


def _content(content: str | list[Any] | None) -> str | list[dict[str, Any]] | None:
    if content is None or isinstance(content, str):
        return content
    if all(isinstance(part, TextPart) for part in content):
        return "".join(part.text for part in content)
    return [part.model_dump(exclude_none=True) for part in content]


# -- answers --------------------------------------------------------------------------------


def usage_dict(usage: base.Usage) -> dict[str, int]:
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
    }


@dataclass(frozen=True, slots=True)
class Ident:
    """What every object of one answer repeats: its id, creation time and model."""

    id: str
    created: int
    model: str


def completion_body(
    ident: Ident,
    *,
    content: str | None,
    finish_reason: str,
    usage: base.Usage,
) -> bytes:
    """A whole `chat.completion` object as JSON bytes."""
    return pydantic_core.to_json(
        {
            "id": ident.id,
            "object": "chat.completion",
            "created": ident.created,
            "model": ident.model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content, "refusal": None},
                    "logprobs": None,
                    "finish_reason": finish_reason,
                }
            ],
            "usage": usage_dict(usage),
        }
    )


class ChunkEncoder:
    """Encodes the SSE events of one stream; the fixed part of each chunk is encoded once."""

    DONE = b"data: [DONE]\n\n"

    def __init__(self, ident: Ident) -> None:
        head = pydantic_core.to_json(
            {
                "id": ident.id,
                "object": "chat.completion.chunk",
                "created": ident.created,
                "model": ident.model,
            }
        )
        self._prefix = b"data: " + head[:-1] + b',"choices":['

    def role(self) -> bytes:
        """The first chunk: the assistant role with empty content."""
        return self._choice({"role": "assistant", "content": ""}, None)

    def content(self, text: str) -> bytes:
        return self._choice({"content": text}, None)

    def finish(self, reason: str) -> bytes:
        return self._choice({}, reason)

    def usage(self, usage: base.Usage) -> bytes:
        """The extra last chunk of `stream_options.include_usage`: no choices, the usage."""
        return self._prefix + b'],"usage":' + pydantic_core.to_json(usage_dict(usage)) + b"}\n\n"

    def activity(self, report: dict[str, Any]) -> bytes:
        """A chunk with no choices and a `corral` object (asked for with ACTIVITY_HEADER):
        `{"tool_calls": [...]}` after a tool turn, `{"model": ...}` before the finish."""
        return self._prefix + b'],"corral":' + pydantic_core.to_json(report) + b"}\n\n"

    @staticmethod
    def error(envelope: dict[str, Any]) -> bytes:
        """An error after the headers went out; the openai SDK raises APIError on it."""
        return b"data: " + pydantic_core.to_json(envelope) + b"\n\n"

    def _choice(self, delta: dict[str, Any], finish_reason: str | None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        return self._prefix + pydantic_core.to_json(choice) + b"]}\n\n"


def tool_activity(runs: Sequence[base.ToolRun]) -> dict[str, Any]:
    """The `corral` object of the chunk reporting one turn's server-side tool calls."""
    return {
        "tool_calls": [
            {"id": r.id, "name": r.name, "arguments": r.arguments, "outcome": r.outcome}
            for r in runs
        ]
    }


def wants_activity(header: str | None) -> bool:
    """Whether ACTIVITY_HEADER asks for the activity chunks."""
    return header is not None and header.strip().lower() in ("1", "true", "yes")


def model_object(agent: str, created: int) -> dict[str, Any]:
    """The one model this server serves: the agent."""
    return {"id": agent, "object": "model", "created": created, "owned_by": "corral"}


def models_body(agent: str, created: int) -> bytes:
    """GET /v1/models: the list holding the agent."""
    return pydantic_core.to_json({"object": "list", "data": [model_object(agent, created)]})


def model_body(agent: str, created: int) -> bytes:
    """GET /v1/models/{agent}."""
    return pydantic_core.to_json(model_object(agent, created))


# -- response models: OpenAPI documentation only ----------------------------------------------


class ErrorBody(BaseModel):
    message: str
    type: str
    param: str | None
    code: str | None


class ErrorEnvelope(BaseModel):
    """Every error answer."""

    error: ErrorBody


class UsageOut(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class AssistantOut(BaseModel):
    role: Literal["assistant"]
    content: str | None
    refusal: None = None


class ChoiceOut(BaseModel):
    index: int
    message: AssistantOut
    logprobs: None = None
    finish_reason: base.FinishReason


class ChatCompletionOut(BaseModel):
    """A whole answer (`stream: false`); `stream: true` answers text/event-stream chunks."""

    id: str
    object: Literal["chat.completion"]
    created: int
    model: str
    choices: list[ChoiceOut]
    usage: UsageOut


class ModelOut(BaseModel):
    id: str
    object: Literal["model"]
    created: int
    owned_by: str


class ModelListOut(BaseModel):
    object: Literal["list"]
    data: list[ModelOut]
