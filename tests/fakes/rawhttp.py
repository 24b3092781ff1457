"""A raw HTTP/1.1 server on loopback whose every byte the test scripts: for transport edge cases.

Runs on the test's own event loop (`asyncio.start_server`), so a handler can wait on an
`asyncio.Event` the test sets. Each accepted connection runs the test's handler with a `Peer`
(read the next request, write bytes, close or reset); `RawServer` counts connections and
records requests. `respond(...)` builds a handler that answers each request on a kept-alive
connection. TLS with an `ssl.SSLContext`; the SNI name the client sent is recorded.

    async with RawServer(respond(lambda request: response(200, b"{}"))) as server:
        ...  # point a client at server.url
        assert server.connections == 1
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType


@dataclass(frozen=True)
class Request:
    """One request as the server read it. Header names are lower-case."""

    method: str
    target: str
    headers: dict[str, str]
    body: bytes


class Peer:
    """The server's end of one connection."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def request(self) -> Request | None:
        """The next request, or None when the client closed the connection first."""
        try:
            head = await self.reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            return None
        line, *fields = head.decode("latin-1").split("\r\n")[:-2]
        method, target, _ = line.split(" ", 2)
        headers = {}
        for field in fields:
            name, _, value = field.partition(":")
            headers[name.strip().lower()] = value.strip()
        if "content-length" in headers:
            body = await self.reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding") == "chunked":
            body = await self._chunked()
        else:
            body = b""
        return Request(method, target, headers, body)

    async def _chunked(self) -> bytes:
        pieces = []
        while size := int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16):
            pieces.append((await self.reader.readexactly(size + 2))[:-2])
        await self.reader.readuntil(b"\r\n")
        return b"".join(pieces)

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def close(self) -> None:
        """Close this end (FIN) and wait until the socket is gone."""
        self.writer.close()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()

    async def reset(self) -> None:
        """Drop the connection without a clean close."""
        self.writer.transport.abort()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()


Handler = Callable[[Peer], Awaitable[None]]


class RawServer:
    """Accepts connections on 127.0.0.1 and runs `handler` for each one."""

    def __init__(self, handler: Handler, *, tls: ssl.SSLContext | None = None) -> None:
        self.handler = handler
        self.connections = 0
        self.requests: list[Request] = []
        self.server_names: list[str | None] = []
        self._tls = tls
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        if tls is not None:
            tls.sni_callback = self._record_sni

    @property
    def port(self) -> int:
        assert self._server is not None
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    @property
    def url(self) -> str:
        scheme = "https" if self._tls is not None else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    async def __aenter__(self) -> RawServer:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0, ssl=self._tls)
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._server is not None
        self._server.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # The handler runs in a task of its own: asyncio (3.11) logs an error when the task
        # that `start_server` made for a connection ends cancelled, as these do at exit.
        self.connections += 1
        task = asyncio.create_task(self.handler(_Recording(self, reader, writer)))
        self._tasks.add(task)
        try:
            await task
        except asyncio.CancelledError:
            if not task.cancelled():
                raise
        finally:
            self._tasks.discard(task)
            writer.close()

    def _record_sni(self, sock: ssl.SSLObject, name: str | None, context: ssl.SSLContext) -> None:
        self.server_names.append(name)


class _Recording(Peer):
    def __init__(
        self, server: RawServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        super().__init__(reader, writer)
        self._server = server

    async def request(self) -> Request | None:
        found = await super().request()
        if found is not None:
            self._server.requests.append(found)
        return found


def response(
    status: int = 200,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    *,
    length: bool = True,
) -> bytes:
    """A whole response; `length=False` leaves the framing to `headers` (or to the close)."""
    fields = {"content-type": "application/json", **(headers or {})}
    if length:
        fields["content-length"] = str(len(body))
    head = "".join(f"{name}: {value}\r\n" for name, value in fields.items())
    return f"HTTP/1.1 {status} Whatever\r\n{head}\r\n".encode() + body


def chunked(*pieces: bytes) -> bytes:
    """A chunked body (follows a head sent with `transfer-encoding: chunked`)."""
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"


def respond(answer: Callable[[Request], bytes]) -> Handler:
    """A handler that answers every request on a connection with `answer(request)`."""

    async def handle(peer: Peer) -> None:
        while (request := await peer.request()) is not None:
            await peer.send(answer(request))

    return handle
