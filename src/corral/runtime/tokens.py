"""Cheap token estimates, for budgets decided before a model has counted anything.

The rate limiter reserves a request's tokens up front from `estimate_messages`, and the
session memory trims history by the same measure; real usage from the provider replaces the
estimate wherever one arrives. About four characters per token, plus a small per-message
overhead, is the usual rule of thumb for English text with BPE tokenizers. Pure; no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

CHARS_PER_TOKEN = 4
PER_MESSAGE = 4


def estimate_text(text: str) -> int:
    """Tokens in a piece of text (at least 1 for non-empty text)."""
    return (len(text) + CHARS_PER_TOKEN - 1) // CHARS_PER_TOKEN


def estimate_message(message: Mapping[str, Any]) -> int:
    """Tokens one OpenAI-shaped message will take in a prompt."""
    total = PER_MESSAGE
    content = message.get("content")
    if isinstance(content, str):
        total += estimate_text(content)
    elif isinstance(content, list):
        for part in content:
            text = part.get("text") if isinstance(part, Mapping) else None
            # An image's cost depends on the model; a flat 85 tokens is OpenAI's "low" detail.
            total += estimate_text(text) if isinstance(text, str) else 85
    for call in message.get("tool_calls") or ():
        function = call.get("function", {})
        total += estimate_text(function.get("name", "")) + estimate_text(
            function.get("arguments", "")
        )
    return total


def estimate_stored(message: Mapping[str, Any]) -> int:
    """What keeping a message costs, in tokens' worth of memory: its prompt estimate, but a
    non-text part (an image as a data URL) counts by its size, not as 85 tokens, so a session's
    token bound also bounds the bytes it holds."""
    total = estimate_message(message)
    content = message.get("content")
    if isinstance(content, list):
        for part in content:
            if isinstance(part, Mapping) and not isinstance(part.get("text"), str):
                total += max(0, estimate_text(_json_size(part)) - 85)
    return total


def _json_size(part: Mapping[str, Any]) -> str:
    # The part's text form; only its length matters, so str() of the values is enough.
    return "".join(str(v) for v in part.values())


def estimate_messages(messages: Iterable[Mapping[str, Any]]) -> int:
    """Tokens a list of messages will take in a prompt."""
    return sum(estimate_message(m) for m in messages)
