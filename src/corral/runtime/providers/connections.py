"""One HTTP/1.1 client connection and the response exchanges it carries, for `transport`.

`Connection` is the `asyncio.Protocol` of one socket (TCP or TLS) to one origin: it writes
what `transport` hands it and parses the answer with httptools (llhttp, in C) into an
`Exchange`, the state of one response (head, unread body pieces, end or error) that the
response's `ResponseStream` drains for httpx2. A connection tells its pool when it may carry
another request (`checkin`: the response ended cleanly and neither side said close) and when
its socket is gone (`forget`). Every failure is one of httpx2's exception classes; a failed or
abandoned exchange takes its connection down with it. Network I/O, on the connection's loop.
"""

from __future__ import annotations

import asyncio
import select
from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol, cast

import httptools
import httpx2

# Unread response bytes at which reading from the socket pauses until the reader catches up.
PAUSE_READING_AT = 256 * 1024

Origin = tuple[str, str, int]


class Pool(Protocol):
    """What a connection tells the pool that opened it."""

    def checkin(self, conn: Connection) -> None:
        """The response ended cleanly and the connection may carry another request."""

    def forget(self, conn: Connection) -> None:
        """The connection's socket is gone."""


class _Unsolicited(Exception):
    """The server sent a response nobody asked for (stops the parser)."""


class Connection(asyncio.Protocol):
    """One HTTP/1.1 connection to one origin, carrying at most one exchange at a time.

    asyncio calls the Protocol methods, httptools the `on_*` ones from inside `feed_data`.
    """

    def __init__(self, pool: Pool, origin: Origin, loop: asyncio.AbstractEventLoop) -> None:
        self.origin = origin
        self.loop = loop
        self.closed = False
        self.pooled = False
        self.idle_since = 0.0
        self._pool = pool
        self._transport: asyncio.Transport | None = None
        # Finds a peer close the loop has not processed yet (checked on checkout).
        self._poll = select.poll()
        self._exchange: Exchange | None = None
        self._parser: httptools.HttpResponseParser | None = None
        self._reading_paused = False
        self._writing_paused = False
        self._drained: asyncio.Future[None] | None = None

    def start(self, head_request: bool, close_after: bool, release: Callable[[], None]) -> Exchange:
        """A new exchange; the previous one has ended (the connection came from the pool)."""
        self._parser = httptools.HttpResponseParser(self)
        self._exchange = Exchange(self, head_request, close_after, release)
        return self._exchange

    def usable(self, loop: asyncio.AbstractEventLoop, fresh_since: float) -> bool:
        """Idle, open, recent, on this loop, and nothing (such as an EOF) waiting to be read."""
        return (
            not self.closed
            and self.loop is loop
            and self.idle_since > fresh_since
            and not self._poll.poll(0)
        )

    def write(self, data: bytes) -> None:
        if self.closed or self._transport is None:
            raise httpx2.WriteError("the connection closed before the request was sent")
        self._transport.write(data)

    async def drain(self, write_timeout: float | None) -> None:
        """Wait until the socket's write buffer is below its high-water mark again."""
        if not self._writing_paused:
            return
        drained = self._drained = self.loop.create_future()
        timer = None
        if write_timeout is not None:
            timer = self.loop.call_later(write_timeout, _expire, drained, httpx2.WriteTimeout)
        try:
            await drained
        finally:
            self._drained = None
            if timer is not None:
                timer.cancel()

    def close(self) -> None:
        """Close gracefully (an idle connection, or the pool shutting down)."""
        if self._exchange is not None:
            self.abort(httpx2.ReadError("the connection pool was closed"))
        elif not self.closed:
            self.closed = True
            if self._transport is not None:
                self._transport.close()

    def abort(self, error: Exception | None) -> None:
        """Drop the connection now; the exchange on it, if any, fails with `error`."""
        exchange, self._exchange = self._exchange, None
        if not self.closed:
            self.closed = True
            if self._transport is not None:
                self._transport.abort()
        if exchange is not None:
            exchange.fail(error or httpx2.ReadError("the response was abandoned"))

    def resume(self) -> None:
        """The reader caught up with the buffered body: read from the socket again."""
        if self._reading_paused and not self.closed and self._transport is not None:
            self._reading_paused = False
            self._transport.resume_reading()

    # -- asyncio.Protocol ---------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            self._poll.register(sock.fileno(), select.POLLIN)

    def data_received(self, data: bytes) -> None:
        if self._exchange is None or self._parser is None:
            self.abort(None)  # bytes nobody asked for: the connection cannot be trusted
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self.abort(httpx2.RemoteProtocolError("the server switched protocols"))
        except httptools.HttpParserError as err:
            self.abort(httpx2.RemoteProtocolError(f"malformed response from the server: {err}"))

    def eof_received(self) -> bool:
        self.closed = True
        self._ended(None)
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._ended(exc)
        if self._drained is not None and not self._drained.done():
            self._drained.set_exception(httpx2.WriteError("the connection closed while sending"))
        self._pool.forget(self)

    def pause_writing(self) -> None:
        self._writing_paused = True

    def resume_writing(self) -> None:
        self._writing_paused = False
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)

    def _ended(self, exc: Exception | None) -> None:
        """The server closed (exc None) or the socket failed, maybe mid-exchange."""
        exchange = self._exchange
        if exchange is None:
            return
        if exc is None and exchange.delimited_by_close():
            self._finish(keep=False)
        elif exc is not None:
            self.abort(httpx2.ReadError(f"the connection failed: {exc}"))
        elif exchange.status:
            self.abort(httpx2.RemoteProtocolError("the server closed before the end of the body"))
        else:
            # httpcore's words for it, which people search for.
            self.abort(
                httpx2.RemoteProtocolError("Server disconnected without sending a response.")
            )

    def _finish(self, keep: bool) -> None:
        exchange, self._exchange = self._exchange, None
        assert exchange is not None
        exchange.finish()
        # Reading may have paused inside the same feed that completed the message.
        self.resume()
        if keep and not exchange.close_after and not self.closed:
            self._pool.checkin(self)
        else:
            self.close()

    # -- httptools callbacks --------------------------------------------------------------

    def on_message_begin(self) -> None:
        if self._exchange is None:
            raise _Unsolicited

    def on_status(self, reason: bytes) -> None:
        assert self._exchange is not None
        self._exchange.reason += reason

    def on_header(self, name: bytes, value: bytes) -> None:
        assert self._exchange is not None
        self._exchange.headers.append((name, value))

    def on_headers_complete(self) -> None:
        assert self._exchange is not None
        assert self._parser is not None
        status = self._parser.get_status_code()
        if status < 200:
            self._exchange.interim()  # 1xx: the final response follows on the same message stream
            return
        self._exchange.head_received(status, self._parser.get_http_version())
        if self._exchange.head_request:
            # llhttp does not know the request was HEAD; its answer has no body whatever the
            # headers say, so the exchange ends here (the next one gets a fresh parser).
            self._finish(self._parser.should_keep_alive())

    def on_body(self, body: bytes) -> None:
        if self._exchange is None:
            raise _Unsolicited
        if self._exchange.feed(body) and not self._reading_paused and self._transport is not None:
            self._reading_paused = True
            self._transport.pause_reading()

    def on_message_complete(self) -> None:
        # Also called after a 1xx (status still 0) and after HEAD (already finished).
        if self._exchange is not None and self._exchange.status and self._parser is not None:
            self._finish(self._parser.should_keep_alive())


class Exchange:
    """One response as it arrives: filled by its Connection, drained by its ResponseStream.

    `release` (the transport's in-flight slot) is called once, when the exchange ends.
    """

    __slots__ = (
        "_buffered",
        "_chunks",
        "_conn",
        "_release",
        "_waiter",
        "close_after",
        "done",
        "error",
        "head_request",
        "headers",
        "reason",
        "status",
        "version",
    )

    def __init__(
        self, conn: Connection, head_request: bool, close_after: bool, release: Callable[[], None]
    ) -> None:
        self.head_request = head_request
        self.close_after = close_after  # the request said `Connection: close`
        self.status = 0
        self.reason = b""
        self.version = b"HTTP/1.1"
        self.headers: list[tuple[bytes, bytes]] = []
        self.done = False
        self.error: Exception | None = None
        self._conn = conn
        self._release: Callable[[], None] | None = release
        self._chunks: list[bytes] = []
        self._buffered = 0
        self._waiter: asyncio.Future[None] | None = None

    # -- filled by the connection ---------------------------------------------------------

    def interim(self) -> None:
        self.reason = b""
        self.headers = []

    def head_received(self, status: int, version: str) -> None:
        self.status = status
        self.version = b"HTTP/" + version.encode("ascii")
        self._wake()

    def feed(self, piece: bytes) -> bool:
        """Buffer a body piece; True when the reader is far enough behind to pause reading."""
        self._chunks.append(piece)
        self._buffered += len(piece)
        self._wake()
        return self._buffered >= PAUSE_READING_AT

    def finish(self) -> None:
        self.done = True
        self._end()

    def fail(self, error: Exception) -> None:
        if not self.done and self.error is None:
            self.error = error
            self._end()

    def delimited_by_close(self) -> bool:
        """The head came and set no length: the body runs until the server closes."""
        if not self.status or self.head_request or self.status in (204, 304):
            return False
        names = {name.lower() for name, _ in self.headers}
        return b"content-length" not in names and b"transfer-encoding" not in names

    # -- drained by the reader -------------------------------------------------------------

    def buffered(self) -> bool:
        return bool(self._chunks)

    def take(self) -> bytes:
        """Everything buffered, as one piece (what arrived since the last take)."""
        chunks, self._chunks, self._buffered = self._chunks, [], 0
        if not self.done:
            self._conn.resume()
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    async def wait_head(self, read_timeout: float | None) -> None:
        while not self.status and self.error is None:
            await self.wait(read_timeout)
        if not self.status:
            assert self.error is not None
            raise self.error

    async def wait(self, read_timeout: float | None) -> None:
        """Until something happens (a head, a piece, the end, an error); a silence longer than
        `read_timeout` fails the exchange with ReadTimeout and drops the connection."""
        loop = self._conn.loop
        waiter = self._waiter = loop.create_future()
        timer = None if read_timeout is None else loop.call_later(read_timeout, self._time_out)
        try:
            await waiter
        finally:
            self._waiter = None
            if timer is not None:
                timer.cancel()

    def abandon(self) -> None:
        """The reader stopped before the end: the rest of the body is never read."""
        if not self.done and self.error is None:
            self._conn.abort(httpx2.ReadError("the response was closed before its end"))

    def _time_out(self) -> None:
        self._conn.abort(httpx2.ReadTimeout("timed out waiting for the upstream to send"))

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _end(self) -> None:
        release, self._release = self._release, None
        if release is not None:
            release()
        self._wake()


class ResponseStream(httpx2.AsyncByteStream):
    """The body of one response for httpx2: pieces as they arrive, then the end or the error."""

    def __init__(self, exchange: Exchange, read_timeout: float | None) -> None:
        self._exchange = exchange
        self._timeout = read_timeout

    async def __aiter__(self) -> AsyncIterator[bytes]:
        exchange = self._exchange
        while True:
            if exchange.buffered():
                yield exchange.take()
            elif exchange.error is not None:
                raise exchange.error
            elif exchange.done:
                return
            else:
                await exchange.wait(self._timeout)

    async def aclose(self) -> None:
        self._exchange.abandon()


def _expire(future: asyncio.Future[Any], error: type[httpx2.TimeoutException]) -> None:
    if not future.done():
        future.set_exception(error("timed out sending the request"))
