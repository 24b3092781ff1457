"""The fake OpenAI upstream of the runtime benchmark: a raw asyncio HTTP/1.1 server on loopback.

Every POST is answered at once with a fixed small chat completion, or, when the body asks for
`"stream": true`, with a fixed SSE stream of `--chunks` content chunks, a finish chunk, a usage
chunk and `data: [DONE]` (chunked transfer encoding, each event its own write). Keep-alive,
no routing, no JSON parsing: the answers are encoded once at start, so the upstream costs a few
tens of microseconds per request and is not what the benchmark measures. Run in its own process
by the runtime suite: `python -m bench.upstream --port P [--chunks N]`; network I/O on loopback.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import signal
from typing import Any

MODEL = "fake-model"
FIRST_WORD = "Hello"
CONTENT = f"{FIRST_WORD} from the fake upstream."
STREAM_FLAG = re.compile(rb'"stream"\s*:\s*true')
HEAD_END = b"\r\n\r\n"
MAX_HEAD = 64 * 1024


def completion_body() -> bytes:
    """The fixed non-streamed answer."""
    return json.dumps(
        {
            "id": "chatcmpl-bench",
            "object": "chat.completion",
            "created": 1_700_000_000,
            "model": MODEL,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": CONTENT},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 12, "completion_tokens": 6, "total_tokens": 18},
        },
        separators=(",", ":"),
    ).encode()


def stream_events(chunks: int) -> list[bytes]:
    """The fixed SSE events: `chunks` content pieces (the first is FIRST_WORD), a finish
    chunk, a usage chunk and [DONE]."""
    if chunks < 1:
        raise ValueError("a stream needs at least one content chunk")
    words = [FIRST_WORD] + [f" word{i}" for i in range(1, chunks)]

    def event(choices: list[dict[str, Any]], usage: dict[str, int] | None = None) -> bytes:
        chunk = {
            "id": "chatcmpl-bench",
            "object": "chat.completion.chunk",
            "created": 1_700_000_000,
            "model": MODEL,
            "choices": choices,
            "usage": usage,
        }
        return b"data: " + json.dumps(chunk, separators=(",", ":")).encode() + b"\n\n"

    events = [
        event([{"index": 0, "delta": {"content": word}, "finish_reason": None}]) for word in words
    ]
    events.append(event([{"index": 0, "delta": {}, "finish_reason": "stop"}]))
    usage = {"prompt_tokens": 12, "completion_tokens": chunks, "total_tokens": 12 + chunks}
    events.append(event([], usage))
    events.append(b"data: [DONE]\n\n")
    return events


def whole_response(body: bytes) -> bytes:
    return (
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
        + f"content-length: {len(body)}\r\n\r\n".encode()
        + body
    )


STREAM_HEAD = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
    b"cache-control: no-cache\r\ntransfer-encoding: chunked\r\n\r\n"
)


def chunked(piece: bytes) -> bytes:
    return f"{len(piece):x}\r\n".encode() + piece + b"\r\n"


class Upstream(asyncio.Protocol):
    """One client connection: parses requests by Content-Length, answers each in order."""

    def __init__(self, whole: bytes, stream: list[bytes]) -> None:
        self._whole = whole
        self._stream = stream
        self._buffer = bytearray()
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        while True:
            end = buffer.find(HEAD_END)
            if end < 0:
                if len(buffer) > MAX_HEAD:
                    self._close()
                return
            length = content_length(bytes(buffer[:end]))
            total = end + len(HEAD_END) + length
            if len(buffer) < total:
                return
            body = bytes(buffer[end + len(HEAD_END) : total])
            del buffer[:total]
            self._answer(body)

    def _answer(self, body: bytes) -> None:
        transport = self._transport
        assert transport is not None
        if STREAM_FLAG.search(body) is None:
            transport.write(self._whole)
            return
        transport.write(STREAM_HEAD)
        for piece in self._stream:
            transport.write(piece)

    def _close(self) -> None:
        if self._transport is not None:
            self._transport.close()


def content_length(head: bytes) -> int:
    """The Content-Length of a request head (0 when absent)."""
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value.strip())
    return 0


async def serve(host: str, port: int, chunks: int) -> None:
    whole = whole_response(completion_body())
    stream = [chunked(event) for event in stream_events(chunks)] + [b"0\r\n\r\n"]
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: Upstream(whole, stream), host, port, backlog=1024, reuse_address=True
    )
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with server:
        await stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--chunks", type=int, default=16, help="content chunks per stream")
    args = parser.parse_args()
    asyncio.run(serve(args.host, args.port, args.chunks))


if __name__ == "__main__":
    main()
