"""A lean HTTP/1.1 transport under the official `openai` SDK's httpx2 client.

`providers.openai` gives the SDK `openai.DefaultAsyncHttpxClient(transport=Transport())`, so
the SDK still builds the requests, headers and timeouts, raises its status errors and decodes
SSE; only the wire below httpx2 changes. httpx2's default stack (httpcore2, anyio, h11) cost
1.3-1.6 ms of CPU per call against a fast upstream; this one is asyncio's `create_connection`,
an `asyncio.Protocol` and httptools' C parser (`connections`; bench/PROFILE.md has numbers).

What it does: HTTP/1.1 over TCP or TLS; a keep-alive pool per origin (a connection goes back
only once its response was read to the end and neither side said close; idle ones expire
after 5 s, at most 100 per origin, and are checked for a peer close on checkout); the request
head and body in one write; response bodies handed up piece by piece as they arrive, reading
paused while too much is unread; httpx2's exception classes for every failure, which the SDK
turns into APITimeoutError / APIConnectionError. Content-Encoding is left to
`httpx2.Response`, which decodes in `aiter_bytes`. What it does not: HTTP/2, proxies (the
caller picks the SDK's own client when `environment_proxy` names one), Unix sockets.
Does network I/O, on the event loop of the calling task.
"""

from __future__ import annotations

import asyncio
import collections
import ssl
from typing import cast

import httpx2

# httpx2's own environment-proxy rules, so the fallback decision matches what its default
# client would do. Private names; the version is pinned in uv.lock and tests cover the rules.
from httpx2._utils import URLPattern, get_environment_proxies

from corral.runtime.providers.connections import Connection, Origin, ResponseStream

PORTS = {"http": 80, "https": 443}
# httpx's keepalive_expiry default; the SDK's default client allows 100 idle and 1000 open.
KEEPALIVE_EXPIRY = 5.0
MAX_IDLE_PER_ORIGIN = 100
MAX_IN_FLIGHT = 1000


class Transport(httpx2.AsyncBaseTransport):
    """The pool of connections and the request/response exchange over one of them."""

    def __init__(
        self,
        *,
        ssl_context: ssl.SSLContext | None = None,
        keepalive_expiry: float = KEEPALIVE_EXPIRY,
        max_idle_per_origin: int = MAX_IDLE_PER_ORIGIN,
        max_in_flight: int = MAX_IN_FLIGHT,
    ) -> None:
        self._ssl = ssl_context
        self._expiry = keepalive_expiry
        self._max_idle = max_idle_per_origin
        self._slots = asyncio.Semaphore(max_in_flight)
        self._idle: dict[Origin, collections.deque[Connection]] = {}
        self._open: set[Connection] = set()

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        timeouts: dict[str, float | None] = request.extensions.get("timeout", {})
        origin = origin_of(request.url)
        head, framing = request_head(request)
        await self._take_slot(timeouts.get("pool"))
        try:
            conn = self._checkout(origin) or await self._connect(origin, timeouts.get("connect"))
        except BaseException:
            self._slots.release()
            raise
        exchange = conn.start(request.method == "HEAD", framing.close, self._slots.release)
        try:
            await _send(conn, request, head, framing, timeouts.get("write"))
            await exchange.wait_head(timeouts.get("read"))
        except BaseException as err:
            conn.abort(err if isinstance(err, Exception) else None)
            raise
        return httpx2.Response(
            exchange.status,
            headers=exchange.headers,
            stream=ResponseStream(exchange, timeouts.get("read")),
            extensions={"http_version": exchange.version, "reason_phrase": exchange.reason},
        )

    async def aclose(self) -> None:
        """Close every connection, idle or carrying a response (that response fails)."""
        for idle in self._idle.values():
            for conn in idle:
                conn.pooled = False
        self._idle.clear()
        if self._open:
            for conn in list(self._open):
                conn.close()
            await asyncio.sleep(0)  # let the loop run the transports' close callbacks

    # -- the pool -----------------------------------------------------------------------

    async def _take_slot(self, pool_timeout: float | None) -> None:
        if not self._slots.locked():
            await self._slots.acquire()
            return
        try:
            async with asyncio.timeout(pool_timeout):
                await self._slots.acquire()
        except TimeoutError as err:
            raise httpx2.PoolTimeout("no connection slot became free in time") from err

    def _checkout(self, origin: Origin) -> Connection | None:
        idle = self._idle.get(origin)
        if not idle:
            return None
        loop = asyncio.get_running_loop()
        fresh_since = loop.time() - self._expiry
        while idle:
            conn = idle.pop()
            conn.pooled = False
            if conn.usable(loop, fresh_since):
                return conn
            conn.close()
        return None

    async def _connect(self, origin: Origin, connect_timeout: float | None) -> Connection:
        scheme, host, port = origin
        loop = asyncio.get_running_loop()
        tls = self._tls() if scheme == "https" else None
        try:
            async with asyncio.timeout(connect_timeout):
                _, conn = await loop.create_connection(
                    lambda: Connection(self, origin, loop),
                    host,
                    port,
                    ssl=tls,
                    server_hostname=host if tls is not None else None,
                )
        except TimeoutError as err:
            raise httpx2.ConnectTimeout(f"connecting to {host}:{port} timed out") from err
        except OSError as err:
            raise httpx2.ConnectError(f"cannot connect to {host}:{port}: {err}") from err
        self._open.add(conn)
        return conn

    def _tls(self) -> ssl.SSLContext:
        if self._ssl is None:
            # What the SDK's default client verifies against (system CAs, SSL_CERT_FILE/DIR).
            self._ssl = httpx2.create_ssl_context()
            self._ssl.set_alpn_protocols(["http/1.1"])
        return self._ssl

    def checkin(self, conn: Connection) -> None:
        """Called by a connection whose response ended cleanly and may carry another."""
        idle = self._idle.setdefault(conn.origin, collections.deque())
        now = conn.loop.time()
        while idle and (len(idle) >= self._max_idle or idle[0].idle_since <= now - self._expiry):
            oldest = idle.popleft()
            oldest.pooled = False
            oldest.close()
        conn.idle_since = now
        conn.pooled = True
        idle.append(conn)

    def forget(self, conn: Connection) -> None:
        """Called by a connection once its socket is gone."""
        self._open.discard(conn)
        if conn.pooled:
            conn.pooled = False
            self._idle[conn.origin].remove(conn)


def origin_of(url: httpx2.URL) -> Origin:
    scheme = url.scheme
    if scheme not in PORTS:
        raise httpx2.UnsupportedProtocol(f"unsupported URL scheme {scheme!r}")
    return scheme, url.raw_host.decode("ascii"), url.port or PORTS[scheme]


class Framing:
    """What the request's own headers say about its body and its connection."""

    __slots__ = ("chunked", "close", "length")

    def __init__(self, length: bool, chunked: bool, close: bool) -> None:
        self.length = length
        self.chunked = chunked
        self.close = close


def request_head(request: httpx2.Request) -> tuple[bytes, Framing]:
    """The request line and headers httpx2 set, without the blank line that ends them."""
    lines = [request.method.encode("ascii"), b" ", request.url.raw_path, b" HTTP/1.1\r\n"]
    length = chunked = close = False
    fields = request.headers.raw  # a new list on every access
    for name, value in fields:
        lower = name.lower()
        if lower == b"content-length":
            length = True
        elif lower == b"transfer-encoding":
            chunked = b"chunked" in value.lower()
        elif lower == b"connection":
            close = b"close" in value.lower()
        lines += (name, b": ", value, b"\r\n")
    head = b"".join(lines)
    expected = len(fields) + 1
    if head.count(b"\n") != expected or head.count(b"\r") != expected:
        raise httpx2.LocalProtocolError("line breaks inside a request header or the URL")
    return head, Framing(length, chunked, close)


async def _send(
    conn: Connection,
    request: httpx2.Request,
    head: bytes,
    framing: Framing,
    write_timeout: float | None,
) -> None:
    try:
        body = request.content
    except httpx2.RequestNotRead:
        await _send_streamed(conn, request, head, framing, write_timeout)
        return
    if framing.chunked:
        body = _chunk(body) + b"0\r\n\r\n"
    elif body and not framing.length:
        head += b"Content-Length: %d\r\n" % len(body)
    conn.write(head + b"\r\n" + body)
    await conn.drain(write_timeout)


async def _send_streamed(
    conn: Connection,
    request: httpx2.Request,
    head: bytes,
    framing: Framing,
    write_timeout: float | None,
) -> None:
    """A body httpx2 has not read: written piece by piece, chunked unless a length was set."""
    chunked = not framing.length
    if chunked and not framing.chunked:
        head += b"Transfer-Encoding: chunked\r\n"
    conn.write(head + b"\r\n")
    stream = cast(httpx2.AsyncByteStream, request.stream)
    async for piece in stream:
        if piece:
            conn.write(_chunk(piece) if chunked else piece)
            await conn.drain(write_timeout)
    if chunked:
        conn.write(b"0\r\n\r\n")
    await conn.drain(write_timeout)


def _chunk(piece: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(piece), piece) if piece else b""


def environment_proxy(url: httpx2.URL | str) -> str | None:
    """The proxy httpx2's default client would use for `url` given HTTP_PROXY, HTTPS_PROXY,
    ALL_PROXY and NO_PROXY (and their lower-case forms) in the environment, or None."""
    target = httpx2.URL(url)
    mounts = [(URLPattern(key), proxy) for key, proxy in get_environment_proxies().items()]
    for pattern, proxy in sorted(mounts, key=lambda mount: mount[0]):
        if pattern.matches(target):
            return proxy
    return None
