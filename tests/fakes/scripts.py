"""What a fake upstream answers to one request: the `Reply` script, shared by both fakes.

Tests build replies with the small constructors below and hand them to a fake
(`fake.enqueue(...)` or `fake.default = ...`); each fake renders a Reply in its own wire
format (OpenAI chat completions or Gemini generateContent). Pure data; no I/O.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, replace
from typing import Any


@dataclass(frozen=True)
class Call:
    """One function call the fake model makes. `id=None` means: send no id (Gemini often
    omits it; the OpenAI fake then makes one up, as every OpenAI-compatible server must)."""

    name: str
    arguments: dict[str, Any] = field(default_factory=dict)
    id: str | None = None
    # The arguments' JSON text exactly as sent, when it is not what json.dumps would make.
    raw: str | None = None

    @property
    def arguments_json(self) -> str:
        if self.raw is not None:
            return self.raw
        return json.dumps(self.arguments, separators=(",", ":"))


@dataclass(frozen=True)
class Reply:
    """One scripted answer.

    text          answer text; streamed as `chunks` (default: split after each space)
    calls         function calls (several = parallel tool calls)
    finish_reason wire value; default: "tool_calls"/"STOP"-like value derived from the content
    usage         (prompt_tokens, completion_tokens); default (len of prompt words, chunk count)
    status        HTTP status; anything but 200 sends the provider's error envelope
    retry_after   seconds, for 429/503: OpenAI fake sends a `retry-after` header, Gemini
                  fake a google.rpc.RetryInfo `retryDelay` (as the real services do)
    hang          never answer (until the client goes away or the fake stops)
    malformed     200 with a body that is not valid JSON (streaming: a broken SSE event)
    chunk_delay   seconds to sleep before each streamed chunk (a slow stream)
    break_after   streaming: drop the connection after this many content/tool chunks
    stall_after   streaming: after this many content/tool chunks, send nothing more (the
                  connection stays open until the client gives up or the fake stops)
    headers       extra response headers
    """

    text: str | None = None
    calls: tuple[Call, ...] = ()
    finish_reason: str | None = None
    usage: tuple[int, int] | None = None
    status: int = 200
    message: str = "scripted failure"
    retry_after: float | None = None
    hang: bool = False
    malformed: bool = False
    chunk_delay: float = 0.0
    break_after: int | None = None
    stall_after: int | None = None
    chunks: tuple[str, ...] | None = None
    headers: tuple[tuple[str, str], ...] = ()

    def pieces(self) -> list[str]:
        """The text as streamed pieces (empty list when there is no text)."""
        if self.chunks is not None:
            return list(self.chunks)
        if not self.text:
            return []
        return re.findall(r"\S+\s*|\s+", self.text)

    def with_(self, **changes: Any) -> Reply:
        """A copy with some fields changed, e.g. `text("hi").with_(chunk_delay=0.1)`."""
        return replace(self, **changes)


def text(content: str, **options: Any) -> Reply:
    """A plain text answer; options are Reply fields (chunk_delay, break_after, usage...)."""
    return Reply(text=content, **options)


def call(name: str, arguments: dict[str, Any] | None = None, id: str | None = None) -> Call:
    """One function call for `tool_calls(...)`."""
    return Call(name=name, arguments=arguments or {}, id=id)


def tool_calls(*calls: Call, content: str | None = None, **options: Any) -> Reply:
    """An answer asking for one or more (parallel) tool calls, optionally with text."""
    return Reply(text=content, calls=tuple(calls), **options)


def error(status: int, message: str = "scripted failure", **options: Any) -> Reply:
    """An error answer in the provider's envelope, e.g. `error(429, retry_after=2)`."""
    return Reply(status=status, message=message, **options)


def hang() -> Reply:
    """No answer at all: the request stays open until the client gives up."""
    return Reply(hang=True)


def malformed() -> Reply:
    """A 200 whose body is not what the wire format promises."""
    return Reply(malformed=True)
