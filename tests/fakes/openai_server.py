"""A scripted fake of the OpenAI chat completions API, served on a loopback port.

Speaks the wire format the official `openai` SDK expects: `POST /v1/chat/completions`
(JSON, or SSE chunks ending in `data: [DONE]`, with the usage chunk when the request asks for
`stream_options.include_usage`), `GET /v1/models`, and the `{"error": {...}}` envelope with a
`retry-after` header for scripted errors. Used by the provider tests and the runtime's
end-to-end tests. Network I/O on loopback, in a background thread.

    with FakeOpenAI() as fake:
        fake.enqueue(scripts.tool_calls(scripts.call("lookup", {"id": "7"})), scripts.text("done"))
        client = openai.AsyncOpenAI(base_url=fake.base_url, api_key="k")
"""

from __future__ import annotations

import itertools
import json
import time
from typing import Any

from fakes import scripts, serving

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    422: "invalid_request_error",
    429: "rate_limit_exceeded",
}

_ids = itertools.count(1)


class FakeOpenAI(serving.FakeServer):
    """An OpenAI-compatible upstream. `api_key`, when set, is required as the bearer token."""

    @property
    def base_url(self) -> str:
        """The `base_url` for the openai SDK: http://127.0.0.1:PORT/v1"""
        return f"{self.url}/v1"

    async def handle(self, request: serving.RecordedRequest, exchange: serving.Exchange) -> None:
        if self.api_key is not None and request.headers.get("authorization") != (
            f"Bearer {self.api_key}"
        ):
            await _error(exchange, scripts.error(401, "Incorrect API key provided"))
        elif request.method == "GET" and request.path == "/v1/models":
            await exchange.json(200, {"object": "list", "data": [_model("fake-model")]})
        elif request.method == "POST" and request.path == "/v1/chat/completions":
            await _chat(request, self.next_reply(request), exchange)
        else:
            await _error(exchange, scripts.error(404, f"no route {request.method} {request.path}"))


def _model(name: str) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": 0, "owned_by": "fake"}


async def _chat(
    request: serving.RecordedRequest, reply: scripts.Reply, exchange: serving.Exchange
) -> None:
    if reply.hang:
        await exchange.hang()
    if reply.status != 200:
        await _error(exchange, reply)
    elif request.is_stream:
        await _stream(request, reply, exchange)
    elif reply.malformed:
        await exchange.raw(200, b'{"id": "chatcmpl-broken", "choices": [', "application/json")
    else:
        await exchange.json(200, _completion(request, reply), dict(reply.headers))


async def _error(exchange: serving.Exchange, reply: scripts.Reply) -> None:
    headers = dict(reply.headers)
    if reply.retry_after is not None:
        headers["retry-after"] = _seconds(reply.retry_after)
    kind = ERROR_TYPES.get(reply.status, "server_error" if reply.status >= 500 else "api_error")
    envelope = {"error": {"message": reply.message, "type": kind, "param": None, "code": kind}}
    await exchange.json(reply.status, envelope, headers)


def _seconds(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _usage(request: serving.RecordedRequest, reply: scripts.Reply) -> dict[str, int]:
    if reply.usage is not None:
        prompt, completion = reply.usage
    else:
        prompt = max(1, serving.word_count(request.body.get("messages", [])))
        completion = len(reply.pieces()) + len(reply.calls)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def _finish(reply: scripts.Reply) -> str:
    return reply.finish_reason or ("tool_calls" if reply.calls else "stop")


def _call_id(call: scripts.Call, index: int, serial: int) -> str:
    return call.id or f"call_fake_{serial}_{index}"


def _completion(request: serving.RecordedRequest, reply: scripts.Reply) -> dict[str, Any]:
    serial = next(_ids)
    message: dict[str, Any] = {"role": "assistant", "content": reply.text}
    if reply.calls:
        message["tool_calls"] = [
            {
                "id": _call_id(call, i, serial),
                "type": "function",
                "function": {"name": call.name, "arguments": call.arguments_json},
            }
            for i, call in enumerate(reply.calls)
        ]
    return {
        "id": f"chatcmpl-fake-{serial}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": request.body.get("model", "fake-model"),
        "choices": [{"index": 0, "message": message, "finish_reason": _finish(reply)}],
        "usage": _usage(request, reply),
    }


def _chunk_deltas(reply: scripts.Reply, serial: int) -> list[dict[str, Any]]:
    """The deltas of a streamed answer: text pieces, then each call's head and its
    arguments in two fragments (as real servers split them)."""
    deltas: list[dict[str, Any]] = [{"content": piece} for piece in reply.pieces()]
    for i, call in enumerate(reply.calls):
        head = {
            "index": i,
            "id": _call_id(call, i, serial),
            "type": "function",
            "function": {"name": call.name, "arguments": ""},
        }
        deltas.append({"tool_calls": [head]})
        text = call.arguments_json
        half = len(text) // 2
        for part in (text[:half], text[half:]):
            deltas.append({"tool_calls": [{"index": i, "function": {"arguments": part}}]})
    return deltas


async def _stream(
    request: serving.RecordedRequest, reply: scripts.Reply, exchange: serving.Exchange
) -> None:
    serial = next(_ids)
    base = {
        "id": f"chatcmpl-fake-{serial}",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": request.body.get("model", "fake-model"),
    }

    def chunk(delta: dict[str, Any], finish: str | None = None) -> str:
        choice = {"index": 0, "delta": delta, "finish_reason": finish}
        return json.dumps({**base, "choices": [choice]})

    await exchange.start_stream(dict(reply.headers))
    await exchange.event(chunk({"role": "assistant", "content": ""}))
    if reply.malformed:
        await exchange.event('{"id": "broken", "choices": [')
        await exchange.end_stream()
        return
    for sent, delta in enumerate(_chunk_deltas(reply, serial)):
        if reply.break_after is not None and sent >= reply.break_after:
            raise serving.DropConnection("scripted break mid-stream")
        if reply.stall_after is not None and sent >= reply.stall_after:
            await exchange.hang()
        await exchange.event(chunk(delta), delay=reply.chunk_delay)
    await exchange.event(chunk({}, _finish(reply)), delay=reply.chunk_delay)
    options = request.body.get("stream_options") or {}
    if options.get("include_usage"):
        usage_chunk = {**base, "choices": [], "usage": _usage(request, reply)}
        await exchange.event(json.dumps(usage_chunk))
    await exchange.event("[DONE]")
    await exchange.end_stream()
