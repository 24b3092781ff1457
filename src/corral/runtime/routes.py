"""The HTTP routes: thin, each one a few lines around the services that do the work.

`POST /v1/chat/completions`, `GET /v1/models[/{model}]`, `/healthz`, `/readyz`, `/metrics`. The chat
body is read with a size cap and validated by `protocol` (not by FastAPI), so auth runs before
any parsing and every error takes the one path through `errors`; its schema is still
published in the OpenAPI document. Included by `app.create_app`; network I/O is the request
itself.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any, TypeVar

from fastapi import APIRouter, Request, Response
from fastapi.responses import StreamingResponse

from corral.runtime import callchain, errors, memory, protocol, serving, tracing
from corral.runtime import logging as jsonlog
from corral.runtime.metrics import CONTENT_TYPE
from corral.runtime.services import Svc

JSON = "application/json"
SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}

router = APIRouter()
T = TypeVar("T")
CLIENT_GONE = "the client disconnected"


def _errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {
        s: {"model": protocol.ErrorEnvelope, "description": "OpenAI error envelope"}
        for s in statuses
    }


# One server-sent event: `data` is a JSON chat.completion.chunk, or `[DONE]` at the end.
SSE_EVENT = {
    "type": "object",
    "properties": {"data": {"type": "string"}, "event": {"type": "string"}},
    "required": ["data"],
}
CHAT_BODY = {
    "parameters": [
        {
            "name": memory.SESSION_HEADER,
            "in": "header",
            "required": False,
            "description": "Keep the conversation on the server under this id (when the agent"
            " has memory enabled).",
            "schema": {"type": "string", "pattern": memory.SESSION_ID.pattern},
        }
    ],
    "requestBody": {
        "required": True,
        "content": {JSON: {"schema": {"$ref": "#/components/schemas/ChatCompletionRequest"}}},
    },
}
CHAT_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The answer: JSON, or server-sent chunks ending in `data: [DONE]`"
        " when `stream` is true.",
        "content": {
            JSON: {"schema": {"$ref": "#/components/schemas/ChatCompletionOut"}},
            "text/event-stream": {"schema": SSE_EVENT},
        },
    },
    **_errors(400, 401, 404, 413, 422, 429, 500, 502, 503, 504),
}


@router.post(
    "/v1/chat/completions",
    summary="Chat with the agent (OpenAI-compatible)",
    response_class=Response,
    openapi_extra=CHAT_BODY,
    responses=CHAT_RESPONSES,
)
async def chat_completions(request: Request, svc: Svc) -> Response:
    principal = svc.auth.authenticate(request.headers.get("authorization"))
    settings = svc.settings
    with svc.drain.receiving_body():
        body = await read_body(request, settings.max_request_bytes, settings.body_timeout_seconds)
    chat = protocol.parse_chat_request(body)
    handling = svc.chat.handle(
        chat,
        principal,
        request.headers.get(memory.SESSION_HEADER),
        jsonlog.request_id.get() or "",
        request.headers.get(callchain.HEADER),
        tracing.extract(request.headers) if svc.chat.traced else None,
        protocol.wants_activity(request.headers.get(protocol.ACTIVITY_HEADER)),
    )
    # A whole answer is worthless once its client has gone: stop its model calls and tools.
    # A stream notices on its own (its next write fails).
    result = await handling if chat.stream else await until_disconnected(request, handling)
    if isinstance(result, serving.Whole):
        return Response(result.body, media_type=JSON, headers=result.headers)
    return StreamingResponse(
        result.chunks, media_type="text/event-stream", headers={**result.headers, **SSE_HEADERS}
    )


@router.get(
    "/v1/models",
    summary="List the model this endpoint serves: the agent",
    response_class=Response,
    responses={200: {"model": protocol.ModelListOut, "description": "The agent."}, **_errors(401)},
)
async def models(request: Request, svc: Svc) -> Response:
    svc.auth.authenticate(request.headers.get("authorization"))
    return Response(svc.models_body, media_type=JSON)


@router.get(
    "/v1/models/{model}",
    summary="Describe the agent (any other model is a 404)",
    response_class=Response,
    responses={200: {"model": protocol.ModelOut, "description": "The agent."}, **_errors(401, 404)},
)
async def model(model: str, request: Request, svc: Svc) -> Response:
    svc.auth.authenticate(request.headers.get("authorization"))
    if model != svc.config.agent:
        raise errors.ModelNotFound(f"the model {model!r} does not exist here", param="model")
    return Response(svc.model_body, media_type=JSON)


@router.get("/healthz", summary="Liveness: the process is serving", response_class=Response)
async def healthz() -> Response:
    return Response(b'{"status":"ok"}', media_type=JSON)


@router.get(
    "/readyz",
    summary="Readiness: the config is loaded and the process is not shutting down",
    response_class=Response,
    responses={503: {"description": "Draining after SIGTERM."}},
)
async def readyz(svc: Svc) -> Response:
    if svc.drain.draining:
        return Response(b'{"status":"draining"}', status_code=503, media_type=JSON)
    return Response(b'{"status":"ready"}', media_type=JSON)


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(svc: Svc) -> Response:
    return Response(svc.metrics.render(), media_type=CONTENT_TYPE)


async def read_body(request: Request, limit: int, seconds: float) -> bytes:
    """The request body, refusing (413) anything over `limit` bytes before reading it all, and
    (408) a body still incomplete after `seconds`, so a slow client cannot hold a
    request, and with it the drain, open."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise errors.PayloadTooLarge(f"the request body is over the {limit}-byte limit")
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(seconds):
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise errors.PayloadTooLarge(f"the request body is over the {limit}-byte limit")
                chunks.append(chunk)
    except TimeoutError:
        raise errors.BodyTimeout(
            f"the request body did not arrive within {seconds:g}s", headers={"connection": "close"}
        ) from None
    return b"".join(chunks)


async def until_disconnected(request: Request, work: Awaitable[T]) -> T:
    """`work`'s result, or ClientGone (`work` cancelled) if the client disconnects first.

    `work` runs in this task; one watcher task waits for the disconnect and cancels this task
    if it comes first (cheaper than racing two tasks: this is on every whole answer's path)."""
    this = asyncio.current_task()
    assert this is not None
    working = True

    def client_gone(watcher: asyncio.Future[None]) -> None:
        if working and not watcher.cancelled():
            this.cancel(CLIENT_GONE)

    gone = asyncio.ensure_future(_disconnect(request))
    gone.add_done_callback(client_gone)
    try:
        return await work
    except asyncio.CancelledError as cancelled:
        if cancelled.args == (CLIENT_GONE,):
            this.uncancel()
            raise errors.ClientGone() from None
        raise
    finally:
        working = False
        gone.cancel()


async def _disconnect(request: Request) -> None:
    """Returns when the client has gone (the body is already read, so `receive` only waits)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass
