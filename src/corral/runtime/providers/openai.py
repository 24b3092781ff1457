"""The `openai` provider: any OpenAI-compatible server through the official `openai` SDK.

One long-lived `AsyncOpenAI` client per model endpoint, created by `factory.build_chain` at
startup, with the SDK's own retries off (the failover chain retries) and a per-attempt timeout.
Streams ask for `stream_options.include_usage` so the last piece carries usage. SDK exceptions
become our `ProviderError` classes here and nowhere else. Does network I/O.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import openai
import pydantic
from openai.types import chat

from corral.runtime.providers import base, upstream

NAME = "openai"
# AsyncOpenAI refuses to start without a key; keyless local servers ignore this one.
KEYLESS = "no-key"
CONNECT_TIMEOUT = 10.0

_FINISH: dict[str, base.FinishReason] = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
    "content_filter": "content_filter",
}


class OpenAIProvider:
    """One model on one OpenAI-compatible endpoint."""

    def __init__(
        self,
        *,
        model: str,
        api_key: str | None,
        base_url: str | None = None,
        timeout: float = 60.0,
        temperature: float | None = None,
        max_tokens: int | None = None,
    ) -> None:
        self._model = model
        self._temperature = temperature
        self._max_tokens = max_tokens
        self._client = openai.AsyncOpenAI(
            api_key=api_key or KEYLESS,
            base_url=base_url,
            max_retries=0,
            timeout=openai.Timeout(timeout, connect=min(timeout, CONNECT_TIMEOUT)),
        )

    @property
    def provider(self) -> str:
        return NAME

    @property
    def model(self) -> str:
        return self._model

    async def complete(self, params: base.ChatParams) -> base.Completion:
        try:
            response = await self._client.chat.completions.create(**self._body(params))
        except (openai.OpenAIError, ValueError) as err:
            raise provider_error(err) from err
        return completion_from(response)

    async def stream(self, params: base.ChatParams) -> AsyncIterator[base.Delta]:
        body = self._body(params)
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
        finished = False
        try:
            chunks = await self._client.chat.completions.create(**body)
            async with chunks:
                async for chunk in chunks:
                    delta = delta_from(chunk)
                    if delta is not None:
                        finished = finished or delta.finish_reason is not None
                        yield delta
        except (openai.OpenAIError, ValueError) as err:
            raise provider_error(err) from err
        if not finished:
            raise base.ProviderUnavailable(
                "upstream stream ended without a finish_reason", provider=NAME
            )

    async def aclose(self) -> None:
        await self._client.close()

    def _body(self, params: base.ChatParams) -> dict[str, Any]:
        """The request body: only the fields that are set (servers differ in defaults)."""
        body: dict[str, Any] = {"model": self._model, "messages": params.messages}
        if params.tools:
            body["tools"] = params.tools
            if params.tool_choice is not None:
                body["tool_choice"] = params.tool_choice
        temperature = params.temperature if params.temperature is not None else self._temperature
        if temperature is not None:
            body["temperature"] = temperature
        if params.top_p is not None:
            body["top_p"] = params.top_p
        max_tokens = params.max_tokens if params.max_tokens is not None else self._max_tokens
        if max_tokens is not None:
            body["max_tokens"] = max_tokens
        if params.stop:
            body["stop"] = params.stop
        return body


def provider_error(err: Exception) -> base.ProviderError:
    """Our error for an exception the SDK (or its JSON parsing) raised."""
    if isinstance(err, openai.APITimeoutError):
        return base.ProviderTimeout("upstream timed out", provider=NAME)
    if isinstance(err, openai.APIStatusError):
        retry_after = upstream.retry_after_from_headers(err.response.headers)
        return upstream.error_for_status(NAME, err.status_code, _message(err), retry_after)
    if isinstance(err, openai.APIConnectionError):
        return base.ProviderUnavailable(f"cannot reach upstream: {err}", provider=NAME)
    if isinstance(err, ValueError | pydantic.ValidationError | openai.APIResponseValidationError):
        return base.ProviderUnavailable("malformed response from upstream", provider=NAME)
    return base.ProviderUnavailable(f"upstream error: {err}", provider=NAME)


def _message(err: openai.APIStatusError) -> str:
    body = err.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and isinstance(inner.get("message"), str):
            return str(inner["message"])
    return err.message


def _finish(value: str | None) -> base.FinishReason:
    return _FINISH.get(value or "stop", "stop")


def _usage(usage: Any) -> base.Usage | None:
    if usage is None:
        return None
    return base.Usage(
        prompt_tokens=usage.prompt_tokens or 0, completion_tokens=usage.completion_tokens or 0
    )


def completion_from(response: chat.ChatCompletion) -> base.Completion:
    if not response.choices:
        raise base.ProviderUnavailable("upstream answer has no choices", provider=NAME)
    choice = response.choices[0]
    calls = [
        base.ToolCall(id=call.id, name=call.function.name, arguments=call.function.arguments)
        for call in choice.message.tool_calls or []
        if call.type == "function"
    ]
    return base.Completion(
        content=choice.message.content,
        tool_calls=calls,
        finish_reason=_finish(choice.finish_reason),
        usage=_usage(response.usage),
        model=response.model,
    )


def delta_from(chunk: chat.ChatCompletionChunk) -> base.Delta | None:
    """Our Delta for one chunk, or None for a chunk that carries nothing (the role-only head)."""
    usage = _usage(chunk.usage)
    if not chunk.choices:
        return base.Delta(usage=usage) if usage is not None else None
    choice = chunk.choices[0]
    calls = [
        base.ToolCallDelta(
            index=call.index,
            id=call.id,
            name=call.function.name if call.function else None,
            arguments=(call.function.arguments or "") if call.function else "",
        )
        for call in choice.delta.tool_calls or []
    ]
    content = choice.delta.content or None
    finish = _finish(choice.finish_reason) if choice.finish_reason else None
    if content is None and not calls and finish is None and usage is None:
        return None
    return base.Delta(content=content, tool_calls=calls, finish_reason=finish, usage=usage)
