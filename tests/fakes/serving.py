"""The machinery both fake upstreams share: a real HTTP server on a loopback port, in a thread.

`FakeServer` runs a small raw-ASGI app under uvicorn in a background thread with its own event
loop, records every request, and picks the scripted `Reply` for each one (queue first, then the
default). Subclasses (`openai_server.FakeOpenAI`, `gemini_server.FakeGemini`) only translate a
Reply into their wire format through `Exchange`. Does network I/O (loopback only).
"""

from __future__ import annotations

import abc
import asyncio
import collections
import json
import logging
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Self

import uvicorn

from fakes import scripts

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Any]
Send = Callable[[Message], Any]
Responder = scripts.Reply | Callable[["RecordedRequest"], scripts.Reply]

START_TIMEOUT = 10.0


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the fake received it. Header names are lower-case."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: Any

    @property
    def is_stream(self) -> bool:
        return isinstance(self.body, dict) and bool(self.body.get("stream"))


class DropConnection(Exception):
    """Raised inside a response to cut the connection mid-body (see Reply.break_after)."""


class _QuietDrops(logging.Filter):
    """Keep uvicorn from logging a traceback for connections we cut on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, DropConnection)


logging.getLogger("uvicorn.error").addFilter(_QuietDrops())


class Exchange:
    """One request/response in progress: the helpers a fake uses to answer."""

    def __init__(self, receive: Receive, send: Send, closing: asyncio.Event) -> None:
        self._receive = receive
        self._send = send
        self._closing = closing

    async def json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        body = json.dumps(payload).encode()
        await self.raw(status, body, "application/json", headers)

    async def raw(
        self,
        status: int,
        body: bytes,
        content_type: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        await self._start(status, content_type, headers, length=len(body))
        await self._send({"type": "http.response.body", "body": body})

    async def start_stream(self, headers: dict[str, str] | None = None) -> None:
        await self._start(200, "text/event-stream", headers, length=None)

    async def event(self, data: str, *, delay: float = 0.0, newline: str = "\n") -> None:
        """Send one SSE `data:` event, after sleeping `delay` seconds."""
        if delay:
            await self.sleep(delay)
        payload = f"data: {data}{newline}{newline}".encode()
        await self._send({"type": "http.response.body", "body": payload, "more_body": True})

    async def end_stream(self) -> None:
        await self._send({"type": "http.response.body", "body": b""})

    async def sleep(self, seconds: float) -> None:
        """Sleep, but wake at once when the fake is stopping."""
        try:
            await asyncio.wait_for(self._closing.wait(), seconds)
        except TimeoutError:
            return
        raise DropConnection("fake stopping")

    async def hang(self) -> None:
        """Answer nothing more until the client disconnects or the fake stops."""
        closing = asyncio.ensure_future(self._closing.wait())
        gone = asyncio.ensure_future(self._wait_disconnect())
        _, pending = await asyncio.wait({closing, gone}, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        raise DropConnection("hung request ended")

    async def _wait_disconnect(self) -> None:
        while (await self._receive())["type"] != "http.disconnect":
            pass

    async def _start(
        self, status: int, content_type: str, headers: dict[str, str] | None, length: int | None
    ) -> None:
        pairs = [(b"content-type", content_type.encode())]
        if length is not None:
            pairs.append((b"content-length", str(length).encode()))
        pairs += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
        await self._send({"type": "http.response.start", "status": status, "headers": pairs})


class FakeServer(abc.ABC):
    """Base of the fakes: start/stop, scripting and recording. Use as a context manager:

    with FakeOpenAI() as fake:
        fake.enqueue(scripts.error(500), scripts.text("hi"))
        ...  # point a client at fake.base_url
        assert fake.requests[0].body["model"] == "m"
    """

    def __init__(self, default: Responder | None = None, *, api_key: str | None = None) -> None:
        self.default: Responder = default or scripts.text("Hello from the fake.")
        self.api_key = api_key
        """When set, requests must carry it (each fake checks it the way its API sends it)."""
        self._queue: collections.deque[Responder] = collections.deque()
        self._requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._server: uvicorn.Server | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closing: asyncio.Event | None = None
        self.port = 0

    # -- scripting and recording (call from the test thread) -----------------------------

    def enqueue(self, *replies: Responder) -> None:
        """Answer the next requests with these, in order; then fall back to `default`."""
        with self._lock:
            self._queue.extend(replies)

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far, oldest first (a copy)."""
        with self._lock:
            return list(self._requests)

    def reset(self) -> None:
        """Forget recorded requests and queued replies (the default stays)."""
        with self._lock:
            self._requests.clear()
            self._queue.clear()

    def wait_for_requests(self, count: int, timeout: float = 10.0) -> list[RecordedRequest]:
        """Block until `count` requests arrived; fail clearly after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while len(seen := self.requests) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"fake saw {len(seen)} requests, expected {count}")
            time.sleep(0.005)
        return seen

    @property
    def url(self) -> str:
        """http://127.0.0.1:PORT (no path)."""
        return f"http://127.0.0.1:{self.port}"

    # -- lifecycle ----------------------------------------------------------------------

    def start(self) -> Self:
        # proto IPPROTO_TCP, not 0: asyncio only sets TCP_NODELAY on sockets it recognises as
        # TCP, and without it every reply on a kept-alive connection waits ~40 ms (Nagle).
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self._asgi,
            log_config=None,
            access_log=False,
            interface="asgi3",
            lifespan="off",
            ws="none",
            timeout_graceful_shutdown=2,
            backlog=1024,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._run, args=(sock,), name=f"{type(self).__name__}:{self.port}", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"{type(self).__name__} did not start on port {self.port}")
            time.sleep(0.005)
        return self

    def stop(self) -> None:
        if self._server is None or self._thread is None:
            return
        if self._loop is not None and self._closing is not None:
            self._loop.call_soon_threadsafe(self._closing.set)
        self._server.should_exit = True
        self._thread.join(timeout=10)
        if self._thread.is_alive():
            raise RuntimeError(f"{type(self).__name__} on port {self.port} did not stop")
        self._server = None
        self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self, sock: socket.socket) -> None:
        assert self._server is not None
        asyncio.run(self._serve(sock))

    async def _serve(self, sock: socket.socket) -> None:
        assert self._server is not None
        self._loop = asyncio.get_running_loop()
        self._closing = asyncio.Event()
        await self._server.serve(sockets=[sock])

    # -- request handling (runs on the fake's loop) ---------------------------------------

    async def _asgi(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        raw = b"".join(chunks)
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode(errors="replace")
        request = RecordedRequest(
            method=scope["method"],
            path=scope["path"],
            query=scope["query_string"].decode(),
            headers={k.decode().lower(): v.decode() for k, v in scope["headers"]},
            body=body,
        )
        with self._lock:
            self._requests.append(request)
        assert self._closing is not None
        await self.handle(request, Exchange(receive, send, self._closing))

    def next_reply(self, request: RecordedRequest) -> scripts.Reply:
        """The scripted reply for this request: the queue's head, else the default."""
        with self._lock:
            responder = self._queue.popleft() if self._queue else self.default
        return responder if isinstance(responder, scripts.Reply) else responder(request)

    @abc.abstractmethod
    async def handle(self, request: RecordedRequest, exchange: Exchange) -> None:
        """Answer one request in the fake's wire format."""


def word_count(value: Any) -> int:
    """A deterministic stand-in for a tokenizer: words in every string inside `value`."""
    if isinstance(value, str):
        return len(value.split())
    if isinstance(value, dict):
        return sum(word_count(v) for v in value.values())
    if isinstance(value, list):
        return sum(word_count(v) for v in value)
    return 0
