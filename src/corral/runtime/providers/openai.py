"""The `openai` provider: any OpenAI-compatible server through the official `openai` SDK.

One long-lived `AsyncOpenAI` client per model endpoint, created by `factory.build_chain` at
startup, with the SDK's own retries off (the failover chain retries) and a per-attempt timeout.
Its HTTP client is the SDK's `DefaultAioHttpClient` (aiohttp under httpx2, the `openai[aiohttp]`
extra): about a third less client CPU per call than the SDK's default httpx2 stack
(bench/PROFILE.md), and it honours HTTP(S)_PROXY and NO_PROXY like the default does.
Requests go through the SDK's own `post` (its headers, timeouts, status-error classes and SSE
decoding) with the body we built and `cast_to=object`, so the SDK hands back decoded JSON:
`chat.completions.create` would first walk the messages against its TypedDicts and then build
pydantic models of the answer, together most of a call's CPU against a fast upstream.
`openai_mapping` turns that JSON into our shapes. Streams ask for `stream_options.include_usage`
so the last piece carries usage. SDK exceptions become our `ProviderError` classes here and
nowhere else, and an upstream's own error text is never passed on (`upstream.safe_message`).
Does network I/O.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import openai

from corral.runtime import redaction
from corral.runtime.providers import base, openai_mapping, upstream

NAME = "openai"
# AsyncOpenAI refuses to start without a key; keyless local servers ignore this one.
KEYLESS = "no-key"
CONNECT_TIMEOUT = 10.0
PATH = "/chat/completions"
# Chunks stay decoded JSON (no pydantic model per chunk); see the module docstring.
CHUNKS = openai.AsyncStream[object]


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
        redact: redaction.Redactor | None = None,
    ) -> None:
        self._model = model
        # Our own key at least, whatever else the app knows to hide.
        self._redact = redact or redaction.Redactor([api_key] if api_key else [])
        self._temperature = temperature
        self._max_tokens = max_tokens
        self._client = sdk_client(api_key=api_key, base_url=base_url, timeout=timeout)

    @property
    def provider(self) -> str:
        return NAME

    @property
    def model(self) -> str:
        return self._model

    async def complete(self, params: base.ChatParams) -> base.Completion:
        try:
            data = await self._client.post(PATH, body=self._body(params), cast_to=object)
            if isinstance(data, str):
                # The SDK decodes only bodies labelled JSON; some servers mislabel theirs.
                data = json.loads(data)
            return openai_mapping.completion_from(data, self._model)
        except (openai.OpenAIError, ValueError) as err:
            raise provider_error(err, self._redact) from err

    async def stream(self, params: base.ChatParams) -> AsyncIterator[base.Delta]:
        body = self._body(params)
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
        finished = False
        try:
            chunks = await self._client.post(
                PATH, body=body, cast_to=object, stream=True, stream_cls=CHUNKS
            )
            async with chunks:
                async for chunk in chunks:
                    delta = openai_mapping.delta_from(chunk)
                    if delta is not None:
                        finished = finished or delta.finish_reason is not None
                        yield delta
        except (openai.OpenAIError, ValueError) as err:
            raise provider_error(err, self._redact) from err
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
        max_tokens = base.completion_bound(params.max_tokens, self._max_tokens)
        if max_tokens is not None:
            body["max_tokens"] = max_tokens
        if params.stop:
            body["stop"] = params.stop
        return body


def sdk_client(*, api_key: str | None, base_url: str | None, timeout: float) -> openai.AsyncOpenAI:
    """The SDK client for one endpoint. Retries are off (the failover chain retries); `timeout`
    bounds each attempt, connecting at most 10 s of it."""
    return openai.AsyncOpenAI(
        api_key=api_key or KEYLESS,
        base_url=base_url,
        max_retries=0,
        timeout=openai.Timeout(timeout, connect=min(timeout, CONNECT_TIMEOUT)),
        http_client=openai.DefaultAioHttpClient(),
    )


def provider_error(err: Exception, redact: redaction.Redactor) -> base.ProviderError:
    """Our error for an exception the SDK (or the JSON decoding and mapping) raised."""
    if isinstance(err, openai.APITimeoutError) and not _not_a_timeout(err):
        return base.ProviderTimeout("upstream timed out", provider=NAME)
    if isinstance(err, openai.APIStatusError):
        retry_after = upstream.retry_after_from_headers(err.response.headers)
        return upstream.error_for_status(NAME, err.status_code, _message(err), retry_after, redact)
    if isinstance(err, openai.APIConnectionError):
        return base.ProviderUnavailable(
            f"cannot reach upstream: {redact.excerpt(str(err))}", provider=NAME
        )
    if isinstance(err, openai_mapping.Malformed):
        return base.ProviderUnavailable(
            f"malformed response from upstream: {redact.excerpt(str(err))}", provider=NAME
        )
    if isinstance(err, ValueError | openai.APIResponseValidationError):
        return base.ProviderUnavailable("malformed response from upstream", provider=NAME)
    return base.ProviderUnavailable(f"upstream error: {redact.excerpt(str(err))}", provider=NAME)


def _not_a_timeout(err: BaseException) -> bool:
    """Whether a "timeout" is really a connection failure: the SDK's aiohttp transport maps
    every aiohttp connection error (a refused connect, a server that hung up) to httpx2's
    ConnectTimeout; only aiohttp's ServerTimeoutError family is a timeout."""
    cause = err.__cause__
    while cause is not None:
        if isinstance(cause, aiohttp.ClientConnectionError):
            return not isinstance(cause, aiohttp.ServerTimeoutError)
        cause = cause.__cause__
    return False


def _message(err: openai.APIStatusError) -> str:
    body = err.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and isinstance(inner.get("message"), str):
            return str(inner["message"])
    return err.message
