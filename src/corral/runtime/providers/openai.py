"""The `openai` provider: any OpenAI-compatible server through the official `openai` SDK.

One long-lived `AsyncOpenAI` client per model endpoint, created by `factory.build_chain` at
startup, with the SDK's own retries off (the failover chain retries) and a per-attempt timeout.
Requests go through the SDK's own `post` (its transport, headers, timeouts, status-error
classes and SSE decoding) with the body we built and `cast_to=object`, so the SDK hands back
decoded JSON: `chat.completions.create` would first walk the messages against its TypedDicts
and then build pydantic models of the answer, together most of a call's CPU against a fast
upstream. `openai_mapping` turns that JSON into our shapes. Streams ask for
`stream_options.include_usage` so the last piece carries usage. SDK exceptions become our
`ProviderError` classes here and nowhere else. Does network I/O.

Below the SDK, HTTP goes through our lean HTTP/1.1 `transport.Transport` (handed to the SDK as
its `http_client`), which costs about half the CPU per call of the SDK's default httpx2 stack.
Two cases keep the SDK's default client instead: `upstream_transport="httpx"` (the runtime's
CORRAL_UPSTREAM_TRANSPORT escape hatch), and a proxy from the environment (HTTP_PROXY,
HTTPS_PROXY, ALL_PROXY, less NO_PROXY) that applies to the base URL, because our transport
does not speak to proxies and the default client honours them.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any, Literal

import openai

from corral.runtime.providers import base, openai_mapping, transport, upstream

NAME = "openai"
# AsyncOpenAI refuses to start without a key; keyless local servers ignore this one.
KEYLESS = "no-key"
CONNECT_TIMEOUT = 10.0
PATH = "/chat/completions"
# Chunks stay decoded JSON (no pydantic model per chunk); see the module docstring.
CHUNKS = openai.AsyncStream[object]
# Which HTTP stack carries the calls: ours, or the SDK's default httpx2 client.
UpstreamTransport = Literal["corral", "httpx"]


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
        upstream_transport: UpstreamTransport = "corral",
    ) -> None:
        self._model = model
        self._temperature = temperature
        self._max_tokens = max_tokens
        self._client, self._upstream_transport = sdk_client(
            api_key=api_key,
            base_url=base_url,
            timeout=timeout,
            upstream_transport=upstream_transport,
        )

    @property
    def provider(self) -> str:
        return NAME

    @property
    def model(self) -> str:
        return self._model

    @property
    def upstream_transport(self) -> UpstreamTransport:
        """The HTTP stack actually in use (see the module docstring for when it is not ours)."""
        return self._upstream_transport

    async def complete(self, params: base.ChatParams) -> base.Completion:
        try:
            data = await self._client.post(PATH, body=self._body(params), cast_to=object)
            if isinstance(data, str):
                # The SDK decodes only bodies labelled JSON; some servers mislabel theirs.
                data = json.loads(data)
            return openai_mapping.completion_from(data, self._model)
        except (openai.OpenAIError, ValueError) as err:
            raise provider_error(err) from err

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


def sdk_client(
    *,
    api_key: str | None,
    base_url: str | None,
    timeout: float,
    upstream_transport: UpstreamTransport,
) -> tuple[openai.AsyncOpenAI, UpstreamTransport]:
    """The SDK client for one endpoint, and which HTTP stack it got. Retries are off (the
    failover chain retries); `timeout` bounds each attempt, connecting at most 10 s of it."""

    def build(http_client: openai.DefaultAsyncHttpxClient | None) -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(
            api_key=api_key or KEYLESS,
            base_url=base_url,
            max_retries=0,
            timeout=openai.Timeout(timeout, connect=min(timeout, CONNECT_TIMEOUT)),
            http_client=http_client,
        )

    if upstream_transport == "corral":
        # Built first to learn the base URL the SDK settles on (OPENAI_BASE_URL, its default);
        # nothing is opened before the first request, so dropping it costs nothing.
        client = build(openai.DefaultAsyncHttpxClient(transport=transport.Transport()))
        if transport.environment_proxy(client.base_url) is None:
            return client, "corral"
    return build(None), "httpx"


def provider_error(err: Exception) -> base.ProviderError:
    """Our error for an exception the SDK (or the JSON decoding and mapping) raised."""
    if isinstance(err, openai.APITimeoutError):
        return base.ProviderTimeout("upstream timed out", provider=NAME)
    if isinstance(err, openai.APIStatusError):
        retry_after = upstream.retry_after_from_headers(err.response.headers)
        return upstream.error_for_status(NAME, err.status_code, _message(err), retry_after)
    if isinstance(err, openai.APIConnectionError):
        return base.ProviderUnavailable(f"cannot reach upstream: {err}", provider=NAME)
    if isinstance(err, openai_mapping.Malformed):
        return base.ProviderUnavailable(f"malformed response from upstream: {err}", provider=NAME)
    if isinstance(err, ValueError | openai.APIResponseValidationError):
        return base.ProviderUnavailable("malformed response from upstream", provider=NAME)
    return base.ProviderUnavailable(f"upstream error: {err}", provider=NAME)


def _message(err: openai.APIStatusError) -> str:
    body = err.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and isinstance(inner.get("message"), str):
            return str(inner["message"])
    return err.message
