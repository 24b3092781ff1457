"""Domain errors of the runtime and the ONE mapping from any error to an HTTP answer.

Everything the serving path can fail with is an `ApiError` (raised by auth, the limiter,
request parsing, the agent loop) or a provider's `ProviderError`; `to_response` turns either
into a status, the OpenAI error envelope `{"error": {"message", "type", "param", "code"}}` and
headers, so the official `openai` SDK raises the matching exception class. Called by the
routes, the app's exception handlers and the shutdown gate. Pure; no I/O.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import pydantic_core

from corral.runtime.providers import base


class ApiError(Exception):
    """An error with a fixed place in the OpenAI error taxonomy."""

    status: int = 500
    type: str = "server_error"
    code: str | None = None

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code
        self.headers = headers or {}


class InvalidRequest(ApiError):
    """The body is not JSON, or asks for something this server does not do (400)."""

    status = 400
    type = "invalid_request_error"


class InvalidField(ApiError):
    """A field of the body has the wrong type or value; `param` names it (422)."""

    status = 422
    type = "invalid_request_error"
    code = "invalid_value"


class Unauthorized(ApiError):
    """No bearer key, or not one of the accepted keys (401)."""

    status = 401
    type = "invalid_request_error"
    code = "invalid_api_key"

    def __init__(self, message: str) -> None:
        super().__init__(message, headers={"www-authenticate": "Bearer"})


class ModelNotFound(ApiError):
    """The request names a model other than this agent (404)."""

    status = 404
    type = "invalid_request_error"
    code = "model_not_found"


class RouteNotFound(ApiError):
    """No such path (404) or method (405)."""

    status = 404
    type = "invalid_request_error"
    code = "not_found"

    def __init__(self, message: str, status: int = 404) -> None:
        super().__init__(message)
        self.status = status


class PayloadTooLarge(ApiError):
    """The body, or the tokens it would use, exceed what one request may take (413)."""

    status = 413
    type = "invalid_request_error"
    code = "request_too_large"


class RateLimited(ApiError):
    """Over the requests or tokens per minute of this key (429); headers say when to retry.
    `kind` is "requests" or "tokens", the envelope's type as OpenAI sends it."""

    status = 429
    code = "rate_limit_exceeded"

    def __init__(self, message: str, *, kind: str, headers: dict[str, str]) -> None:
        super().__init__(message, headers=headers)
        self.kind = kind
        self.type = kind


class BudgetExceeded(ApiError):
    """A daily or monthly budget of this key is spent (429); retry-after says when its window
    resets. OpenAI's type for a spent quota."""

    status = 429
    type = "insufficient_quota"
    code = "budget_exceeded"


class StoreUnavailable(ApiError):
    """The shared state store is unreachable and the Agent fails closed (503)."""

    status = 503
    type = "server_error"
    code = "state_store_unavailable"

    def __init__(self) -> None:
        super().__init__(
            "the shared state store (spec.stateStore) is unreachable and this Agent fails"
            " closed; retry the request",
            headers={"retry-after": "1"},
        )


class ShuttingDown(ApiError):
    """The process is draining after SIGTERM; another replica should take the request (503)."""

    status = 503
    type = "server_error"
    code = "shutting_down"

    def __init__(self) -> None:
        super().__init__(
            "this replica is shutting down; retry the request",
            headers={"retry-after": "1", "connection": "close"},
        )


class ToolIterationsExceeded(ApiError):
    """The model still asked for tools after the configured number of turns (500)."""

    status = 500
    type = "server_error"
    code = "tool_iterations_exceeded"


class CallRefused(ApiError):
    """An agent call that would loop back or nest deeper than `maxCallDepth` (400); the
    calling agent's tool reads the message."""

    status = 400
    type = "invalid_request_error"


class RequestTimeout(ApiError):
    """The whole request (every model turn and tool call) outlasted its deadline (504)."""

    status = 504
    type = "server_error"
    code = "request_timeout"


class BodyTimeout(ApiError):
    """The client did not finish sending its body in time (408)."""

    status = 408
    type = "invalid_request_error"
    code = "request_body_timeout"


class ClientGone(ApiError):
    """The client disconnected before its answer was ready; nobody reads this 499."""

    status = 499
    type = "invalid_request_error"
    code = "client_closed_request"

    def __init__(self) -> None:
        super().__init__("the client closed the connection before the answer was ready")


@dataclass(frozen=True, slots=True)
class ErrorResponse:
    """What to answer: status, JSON body (the envelope) and extra headers."""

    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class _Class:
    status: int
    type: str
    code: str | None
    headers: dict[str, str] = field(default_factory=dict)


def to_response(exc: BaseException) -> ErrorResponse:
    """The one mapping: a domain or provider error (anything else is a 500) to an answer."""
    if isinstance(exc, ApiError):
        return render(exc.status, exc.message, exc.type, exc.param, exc.code, exc.headers)
    if isinstance(exc, base.ProviderError):
        cls = _classify(exc)
        return render(cls.status, str(exc), cls.type, None, cls.code, cls.headers)
    return render(500, "internal error", "server_error", None, "internal_error", {})


def envelope(
    message: str, type_: str, param: str | None = None, code: str | None = None
) -> dict[str, Any]:
    """The OpenAI error envelope as a dict (also sent inside a stream, after the headers)."""
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def stream_envelope(exc: BaseException) -> dict[str, Any]:
    """The envelope for an error that happens after a stream's headers went out."""
    answer = to_response(exc)
    parsed: dict[str, Any] = pydantic_core.from_json(answer.body)
    return parsed


def render(
    status: int,
    message: str,
    type_: str,
    param: str | None = None,
    code: str | None = None,
    headers: dict[str, str] | None = None,
) -> ErrorResponse:
    """An answer with the envelope built from its parts."""
    body = pydantic_core.to_json(envelope(message, type_, param, code))
    return ErrorResponse(status=status, body=body, headers=dict(headers or {}))


def _classify(exc: base.ProviderError) -> _Class:
    if isinstance(exc, base.AllProvidersFailed):
        # The client learns how the last model failed: a timeout stays a 504, a 429 a 429.
        return _classify(exc.errors[-1]) if exc.errors else _Class(502, "server_error", None)
    if isinstance(exc, base.ProviderTimeout):
        return _Class(504, "server_error", "upstream_timeout")
    retry = _retry_after(exc.retry_after)
    if isinstance(exc, base.CircuitOpen):
        return _Class(503, "server_error", "upstream_circuit_open", retry)
    if isinstance(exc, base.ProviderRejected):
        # Upstream judged the request itself bad (context too long, invalid value): the client's
        # to fix. Upstream 401/403/404 mean our key or model name is wrong: the operator's to fix.
        if exc.status in (400, 413, 422):
            return _Class(exc.status, "invalid_request_error", "upstream_rejected")
        return _Class(502, "server_error", "upstream_rejected")
    if exc.status == 429:
        return _Class(429, "requests", "upstream_rate_limited", retry)
    return _Class(502, "server_error", "upstream_error", retry)


def _retry_after(seconds: float | None) -> dict[str, str]:
    if seconds is None or seconds < 0:
        return {}
    return {"retry-after": str(max(1, math.ceil(seconds)))}
