"""The ASGI edge every request passes: request id, drain gate, in-flight count, metrics, log.

Plain ASGI (not BaseHTTPMiddleware) so streams pass through untouched and the per-request
cost stays a few microseconds. A valid incoming `x-request-id` is kept, otherwise one is made;
it is echoed on the response and set in the logging context. While draining, new `/v1/*`
requests get the 503 envelope; health and metrics routes are never counted as in flight (a
probe must not hold up a drain) nor logged per request. An error no handler took is logged
here, while the request id is still set, and answered with the 500 envelope. Installed by the
app factory; I/O is the ASGI traffic itself plus one access log line per API request.
"""

from __future__ import annotations

import contextvars
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from corral.runtime import errors, metrics, shutdown
from corral.runtime import logging as jsonlog

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,128}$")
API_PREFIX = "/v1/"
access = logging.getLogger("corral.runtime.access")
log = logging.getLogger(__name__)


class Edge:
    """Wraps the app; see the module docstring."""

    def __init__(self, app: ASGIApp, recorder: metrics.Metrics, drain: shutdown.Drain) -> None:
        self._app = app
        self._metrics = recorder
        self._drain = drain

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        started = time.perf_counter()
        path: str = scope["path"]
        rid = _request_id(scope)
        token = jsonlog.request_id.set(rid)
        api = path.startswith(API_PREFIX)
        status = 500
        responded = False
        rid_header = (b"x-request-id", rid.encode())

        async def send_with_id(message: Message) -> None:
            nonlocal status, responded
            if message["type"] == "http.response.start":
                status, responded = message["status"], True
                message["headers"] = [*message.get("headers", ()), rid_header]
            await send(message)

        if api and self._drain.draining:
            try:
                await _refuse(send_with_id)
            finally:
                self._finish(scope, status, started, token)
            return
        if api:
            self._drain.enter()
            self._metrics.inflight.inc()
        try:
            await self._app(scope, receive, send_with_id)
        except Exception as exc:
            log.error("unhandled error", exc_info=exc, extra={"request_id": rid})
            if not responded:
                await _answer(send_with_id, errors.to_response(exc))
        finally:
            # Recorded before leaving the in-flight count: once nothing is in flight, every
            # request is in the metrics.
            self._finish(scope, status, started, token)
            if api:
                self._drain.leave()
                self._metrics.inflight.dec()

    def _finish(
        self, scope: Scope, status: int, started: float, token: contextvars.Token[str | None]
    ) -> None:
        seconds = time.perf_counter() - started
        path: str = scope["path"]
        self._metrics.request(path, status, seconds)
        if path.startswith(API_PREFIX):
            access.info(
                "%s %s %d",
                scope["method"],
                path,
                status,
                extra={"status": status, "duration_ms": round(seconds * 1000, 2)},
            )
        jsonlog.request_id.reset(token)


def _request_id(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            text: str = value.decode("latin-1")
            if REQUEST_ID.match(text):
                return text
            break
    return uuid.uuid4().hex


async def _refuse(send: Send) -> None:
    await _answer(send, errors.to_response(errors.ShuttingDown()))


async def _answer(send: Send, answer: errors.ErrorResponse) -> None:
    headers = [(b"content-type", b"application/json")]
    headers += [(k.encode(), v.encode()) for k, v in answer.headers.items()]
    headers.append((b"content-length", str(len(answer.body)).encode()))
    await send({"type": "http.response.start", "status": answer.status, "headers": headers})
    await send({"type": "http.response.body", "body": answer.body})
