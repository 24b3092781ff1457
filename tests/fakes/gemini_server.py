"""A scripted fake of the Gemini API (generativelanguage, any API version), on a loopback port.

Speaks what the `google-genai` SDK expects when pointed at it with
`types.HttpOptions(base_url=fake.base_url)`: `POST /{version}/models/{model}:generateContent`
(JSON) and `:streamGenerateContent?alt=sse` (SSE, one GenerateContentResponse per event),
function calls as `functionCall` parts (with or without `id`), `usageMetadata`, and the Google
error envelope; a scripted `retry_after` becomes a `google.rpc.RetryInfo` detail, as the real
service sends it. Network I/O on loopback, in a background thread.

    with FakeGemini() as fake:
        fake.enqueue(scripts.tool_calls(scripts.call("lookup", {"id": "7"})))  # no id sent
        client = genai.Client(api_key="k", http_options=types.HttpOptions(base_url=fake.base_url))
"""

from __future__ import annotations

import itertools
import json
import re
from typing import Any

from fakes import scripts, serving

STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
ROUTE = re.compile(r"^/(?P<version>[^/]+)/models/(?P<model>[^/:]+):(?P<method>\w+)$")

_ids = itertools.count(1)


class FakeGemini(serving.FakeServer):
    """A Gemini upstream. `api_key`, when set, is required in the `x-goog-api-key` header."""

    @property
    def base_url(self) -> str:
        """The `base_url` for google-genai's HttpOptions: http://127.0.0.1:PORT/"""
        return f"{self.url}/"

    async def handle(self, request: serving.RecordedRequest, exchange: serving.Exchange) -> None:
        route = ROUTE.match(request.path)
        if self.api_key is not None and request.headers.get("x-goog-api-key") != self.api_key:
            await _error(exchange, scripts.error(401, "API key not valid."))
        elif request.method != "POST" or route is None:
            await _error(exchange, scripts.error(404, f"no route {request.method} {request.path}"))
        elif route["method"] == "generateContent":
            await _generate(request, route["model"], self.next_reply(request), exchange)
        elif route["method"] == "streamGenerateContent":
            await _stream(request, route["model"], self.next_reply(request), exchange)
        else:
            await _error(exchange, scripts.error(404, f"unknown method {route['method']}"))


async def _error(exchange: serving.Exchange, reply: scripts.Reply) -> None:
    error: dict[str, Any] = {
        "code": reply.status,
        "message": reply.message,
        "status": STATUS_NAMES.get(reply.status, "UNKNOWN"),
    }
    if reply.retry_after is not None:
        error["details"] = [
            {
                "@type": "type.googleapis.com/google.rpc.RetryInfo",
                "retryDelay": f"{reply.retry_after:g}s",
            }
        ]
    await exchange.json(reply.status, {"error": error}, dict(reply.headers))


def _usage(request: serving.RecordedRequest, reply: scripts.Reply) -> dict[str, int]:
    if reply.usage is not None:
        prompt, completion = reply.usage
    else:
        body = request.body if isinstance(request.body, dict) else {}
        prompt = max(1, serving.word_count([body.get("contents"), body.get("systemInstruction")]))
        completion = len(reply.pieces()) + len(reply.calls)
    return {
        "promptTokenCount": prompt,
        "candidatesTokenCount": completion,
        "totalTokenCount": prompt + completion,
    }


def _call_part(call: scripts.Call) -> dict[str, Any]:
    function_call: dict[str, Any] = {"name": call.name, "args": call.arguments}
    if call.id is not None:
        function_call["id"] = call.id
    return {"functionCall": function_call}


def _response(
    model: str, serial: int, parts: list[dict[str, Any]], finish: str | None, usage: Any
) -> dict[str, Any]:
    candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
    if finish is not None:
        candidate["finishReason"] = finish
    return {
        "candidates": [candidate],
        "usageMetadata": usage,
        "modelVersion": model,
        "responseId": f"fake-{serial}",
    }


async def _generate(
    request: serving.RecordedRequest, model: str, reply: scripts.Reply, exchange: serving.Exchange
) -> None:
    if reply.hang:
        await exchange.hang()
    if reply.status != 200:
        await _error(exchange, reply)
        return
    if reply.malformed:
        await exchange.raw(200, b'{"candidates": [', "application/json")
        return
    parts: list[dict[str, Any]] = [{"text": reply.text}] if reply.text else []
    parts += [_call_part(call) for call in reply.calls]
    finish = reply.finish_reason or "STOP"
    body = _response(model, next(_ids), parts, finish, _usage(request, reply))
    await exchange.json(200, body, dict(reply.headers))


async def _stream(
    request: serving.RecordedRequest, model: str, reply: scripts.Reply, exchange: serving.Exchange
) -> None:
    """Text pieces one per event; all function calls together in one event (as Gemini does);
    the last event carries finishReason. Every event carries the usage so far."""
    if reply.hang:
        await exchange.hang()
    if reply.status != 200:
        await _error(exchange, reply)
        return
    serial = next(_ids)
    await exchange.start_stream(dict(reply.headers))
    if reply.malformed:
        await exchange.event('{"candidates": [', newline="\r\n")
        await exchange.end_stream()
        return
    events: list[list[dict[str, Any]]] = [[{"text": piece}] for piece in reply.pieces()]
    if reply.calls:
        events.append([_call_part(call) for call in reply.calls])
    if not events:
        events.append([{"text": ""}])
    usage = _usage(request, reply)
    for sent, parts in enumerate(events):
        if reply.break_after is not None and sent >= reply.break_after:
            raise serving.DropConnection("scripted break mid-stream")
        if reply.stall_after is not None and sent >= reply.stall_after:
            await exchange.hang()
        last = sent == len(events) - 1
        finish = (reply.finish_reason or "STOP") if last else None
        body = _response(model, serial, parts, finish, usage)
        await exchange.event(json.dumps(body), delay=reply.chunk_delay, newline="\r\n")
    await exchange.end_stream()
