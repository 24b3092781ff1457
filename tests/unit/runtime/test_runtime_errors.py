"""The one mapping from errors to HTTP answers, as the openai SDK will read them."""

from __future__ import annotations

import json

import pytest

from corral.runtime import errors
from corral.runtime.providers import base


def envelope(answer: errors.ErrorResponse) -> dict[str, object]:
    parsed: dict[str, object] = json.loads(answer.body)["error"]
    return parsed


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (errors.InvalidRequest("bad"), 400, None),
        (errors.InvalidField("bad", param="x"), 422, "invalid_value"),
        (errors.Unauthorized("no"), 401, "invalid_api_key"),
        (errors.ModelNotFound("who"), 404, "model_not_found"),
        (errors.RouteNotFound("where", 405), 405, "not_found"),
        (errors.PayloadTooLarge("big"), 413, "request_too_large"),
        (errors.RateLimited("slow", kind="tokens", headers={}), 429, "rate_limit_exceeded"),
        (errors.ShuttingDown(), 503, "shutting_down"),
        (errors.ToolIterationsExceeded("loop"), 500, "tool_iterations_exceeded"),
        (ValueError("secret detail"), 500, "internal_error"),
    ],
)
def test_domain_errors_map_to_their_status_and_code(
    error: Exception, status: int, code: str | None
) -> None:
    answer = errors.to_response(error)

    assert answer.status == status
    assert envelope(answer)["code"] == code
    assert set(envelope(answer)) == {"message", "type", "param", "code"}


def test_an_unexpected_error_does_not_leak_its_message() -> None:
    assert envelope(errors.to_response(ValueError("db password=x")))["message"] == (
        "internal error"
    )


def test_the_envelope_keeps_the_param_and_the_headers() -> None:
    answer = errors.to_response(errors.InvalidField("temperature: too hot", param="temperature"))
    assert envelope(answer)["param"] == "temperature"

    limited = errors.RateLimited("slow", kind="requests", headers={"retry-after": "3"})
    assert errors.to_response(limited).headers == {"retry-after": "3"}
    assert envelope(errors.to_response(limited))["type"] == "requests"
    assert errors.to_response(errors.Unauthorized("no")).headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(
    ("error", "status", "retry_after"),
    [
        (base.ProviderTimeout("slow", provider="openai"), 504, None),
        (base.ProviderUnavailable("down", provider="openai", status=500), 502, None),
        (base.ProviderUnavailable("busy", provider="x", status=429, retry_after=2.5), 429, "3"),
        (base.CircuitOpen("open", provider="openai", retry_after=12), 503, "12"),
        (base.ProviderRejected("too long", provider="openai", status=400), 400, None),
        (base.ProviderRejected("bad key", provider="openai", status=401), 502, None),
        (base.ProviderRejected("no model", provider="gemini", status=404), 502, None),
    ],
)  # fmt: skip
def test_provider_errors_map_to_gateway_statuses(
    error: base.ProviderError, status: int, retry_after: str | None
) -> None:
    answer = errors.to_response(error)

    assert answer.status == status
    assert answer.headers.get("retry-after") == retry_after


def test_all_providers_failed_answers_like_the_last_failure() -> None:
    failures: list[base.ProviderError] = [
        base.ProviderUnavailable("down", provider="openai", status=503),
        base.ProviderTimeout("slow", provider="gemini"),
    ]

    answer = errors.to_response(base.AllProvidersFailed(failures))

    assert answer.status == 504
    assert "openai: down" in str(envelope(answer)["message"])


def test_an_error_inside_a_stream_uses_the_same_envelope() -> None:
    streamed = errors.stream_envelope(base.ProviderUnavailable("cut", provider="openai"))

    assert streamed["error"]["type"] == "server_error"
    assert streamed["error"]["code"] == "upstream_error"
