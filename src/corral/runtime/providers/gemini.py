"""The `gemini` provider: Google's Gemini API through the maintained `google-genai` SDK.

One long-lived `genai.Client` per model endpoint, created by `factory.build_chain` at startup,
on aiohttp (the SDK's choice when aiohttp is installed; the same HTTP library as under the
`openai` provider and the tools), with the SDK's retries off (the failover chain retries) and
its per-request timeout. Shapes are translated by `gemini_mapping`; SDK and
transport exceptions become our `ProviderError` classes here and nowhere else. Network I/O.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pydantic
from google import genai
from google.genai import errors, types

from corral.runtime import redaction
from corral.runtime.providers import base, gemini_mapping, upstream

NAME = "gemini"
# What a call can raise: the SDK's status errors, aiohttp's (its timeouts are TimeoutErrors),
# and the parsing of what came back. `provider_error` maps each.
CALL_ERRORS = (
    errors.APIError,
    aiohttp.ClientError,
    TimeoutError,
    ValueError,
    pydantic.ValidationError,
)


class GeminiProvider:
    """One Gemini model."""

    def __init__(
        self,
        *,
        model: str,
        api_key: str,
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
        self._signatures = gemini_mapping.ThoughtSignatures()
        options = types.HttpOptions(
            base_url=base_url,
            timeout=int(timeout * 1000),
            retry_options=types.HttpRetryOptions(attempts=1),
        )
        self._client = genai.Client(api_key=api_key, http_options=options)

    @property
    def provider(self) -> str:
        return NAME

    @property
    def model(self) -> str:
        return self._model

    async def complete(self, params: base.ChatParams) -> base.Completion:
        contents, config = self._request(params)
        try:
            response = await self._client.aio.models.generate_content(
                model=self._model, contents=contents, config=config
            )
            return gemini_mapping.completion_from(response, self._model, self._signatures)
        except CALL_ERRORS as err:
            raise provider_error(err, self._redact) from err

    async def stream(self, params: base.ChatParams) -> AsyncIterator[base.Delta]:
        contents, config = self._request(params)
        mapper = gemini_mapping.StreamMapper(self._signatures)
        try:
            pieces = await self._client.aio.models.generate_content_stream(
                model=self._model, contents=contents, config=config
            )
            try:
                async for piece in pieces:
                    delta = mapper.feed(piece)
                    if delta is not None:
                        yield delta
            finally:
                # Release the connection now if our consumer stops early, not at GC time.
                close = getattr(pieces, "aclose", None)
                if close is not None:
                    await close()
            closing = mapper.end()
        except CALL_ERRORS as err:
            raise provider_error(err, self._redact) from err
        yield closing

    async def aclose(self) -> None:
        await self._client.aio.aclose()

    def _request(
        self, params: base.ChatParams
    ) -> tuple[list[types.Content], types.GenerateContentConfig]:
        try:
            system, contents = gemini_mapping.contents_from(params.messages, self._signatures)
            config = gemini_mapping.config_from(
                params, system, temperature=self._temperature, max_tokens=self._max_tokens
            )
        except (gemini_mapping.UnsupportedInput, pydantic.ValidationError) as err:
            raise base.ProviderRejected(str(err), provider=NAME, status=400) from err
        return contents, config


def provider_error(err: Exception, redact: redaction.Redactor) -> base.ProviderError:
    """Our error for an exception the SDK, aiohttp or the response parsing raised."""
    if isinstance(err, errors.APIError):
        return upstream.error_for_status(
            NAME, err.code, err.message or "", _retry_after(err), redact
        )
    if isinstance(err, TimeoutError):  # aiohttp's timeouts are TimeoutErrors too
        return base.ProviderTimeout("upstream timed out", provider=NAME)
    if isinstance(err, aiohttp.ClientError):
        return base.ProviderUnavailable(
            f"cannot reach upstream: {redact.excerpt(str(err))}", provider=NAME
        )
    return base.ProviderUnavailable("malformed response from upstream", provider=NAME)


def _retry_after(err: errors.APIError) -> float | None:
    headers = getattr(err.response, "headers", None)
    from_headers = upstream.retry_after_from_headers(headers)
    if from_headers is not None:
        return from_headers
    details = err.details.get("error", err.details) if isinstance(err.details, dict) else None
    if isinstance(details, dict):
        return upstream.retry_after_from_google_details(details.get("details"))
    return None
