"""One MCP session per server per replica, kept alive across server restarts.

`Session` wraps the official `mcp` SDK client (`streamable_http_client` or `sse_client`, then
`ClientSession`). It connects lazily, on the first call or listing, and every call of this
replica shares the connection. The SDK's transports run in anyio task groups that must be
entered and left by one task, so each connection lives in its own owner task (`_Connection`),
which keeps the cause of its end: that is how a failed call learns whether the server ever
received it. When the server says the session is gone (HTTP 404, "Session terminated") or the
connection drops, the connection is dropped, a new one is initialized (retrying the handshake
with backoff while the caller's deadline allows: a restarting server comes back), and the call
is sent once more if the server never accepted it (the session was gone, or nothing could
connect) or if the tool says retrying is harmless (`readOnlyHint` / `idempotentHint`).
Everything else is the caller's to report. Header values (some from Secrets) go to the server
only: never into a log line, an error message or a metric. Used by `mcptools`; does network I/O.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any, TypeVar

import anyio
import httpx
from mcp import types
from mcp.client.session import ClientSession
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import McpError

from corral.api.runtimeconfig import McpServerConfig

log = logging.getLogger(__name__)
T = TypeVar("T")

# How long an idle stream may stay silent before the SDK gives it up (and we reconnect).
STREAM_READ_SECONDS = 300.0
FIRST_BACKOFF = 0.05
MAX_BACKOFF = 1.0
# Causes of a connection's end that prove the server never saw what was being sent.
_NEVER_SENT = (httpx.ConnectError, httpx.ConnectTimeout, ConnectionRefusedError)
# JSON-RPC answers that mean "this session is gone", not "the call failed".
_SESSION_TERMINATED = 32600  # the SDK's code for HTTP 404: "Session terminated"
_SESSION_GONE_CODES = frozenset({types.CONNECTION_CLOSED, _SESSION_TERMINATED})

OnInitialized = Callable[[str], None]
"""Told the reason ("first", "session_gone", "connection_lost") of each new session."""
OnListChanged = Callable[[], Awaitable[None]]


class Unreachable(Exception):
    """No session could be set up (the message names the cause, never a header)."""


class SessionLost(Exception):
    """The session ended under a call that cannot safely be sent again."""


@dataclasses.dataclass(eq=False)
class _Connection:
    """One live transport + ClientSession, owned by one task."""

    ready: asyncio.Future[ClientSession]
    ended: asyncio.Future[None]
    closing: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)
    causes: list[BaseException] = dataclasses.field(default_factory=list)
    task: asyncio.Task[None] | None = None

    def never_sent(self) -> bool:
        """Whether the connection ended because nothing reached the server."""
        return any(isinstance(cause, _NEVER_SENT) for cause in self.causes) or any(
            isinstance(c, httpx.HTTPStatusError) and c.response.status_code in (404, 502, 503)
            for c in self.causes
        )


class Session:
    """The one session with one MCP server; safe to share between concurrent calls."""

    def __init__(
        self,
        server: McpServerConfig,
        headers: Mapping[str, str],
        on_initialized: OnInitialized = lambda reason: None,
        on_list_changed: OnListChanged | None = None,
    ) -> None:
        self.server = server
        self._headers = dict(headers)
        self._on_initialized = on_initialized
        self._on_list_changed = on_list_changed
        self._lock = asyncio.Lock()
        self._current: _Connection | None = None
        self._next_reason: str | None = "first"
        """Why the next session is set up; None after the first one: the last one was lost."""
        self._closed = False

    async def list_tools(self) -> list[types.Tool]:
        """Every tool the server lists (all pages); reconnects once if the session was lost."""

        async def listing(session: ClientSession) -> list[types.Tool]:
            found: list[types.Tool] = []
            cursor: str | None = None
            while True:
                params = types.PaginatedRequestParams(cursor=cursor) if cursor else None
                page = await session.list_tools(params=params)
                found.extend(page.tools)
                cursor = page.nextCursor
                if not cursor:
                    return found

        return await self._with_session(listing, retry_harmless=True)

    async def call_tool(
        self,
        name: str,
        arguments: dict[str, Any],
        retry_harmless: bool,
        meta: dict[str, Any] | None = None,
    ) -> types.CallToolResult:
        """Call a tool; `retry_harmless` allows a resend when the connection dropped mid-call.
        `meta` goes in the request's `_meta` (the W3C trace context)."""

        async def calling(session: ClientSession) -> types.CallToolResult:
            return await session.call_tool(name, arguments, meta=meta)

        return await self._with_session(calling, retry_harmless)

    async def close(self) -> None:
        self._closed = True
        if self._current is not None:
            await self._drop(self._current)

    async def _with_session(
        self, work: Callable[[ClientSession], Awaitable[T]], retry_harmless: bool
    ) -> T:
        connection = await self._connection()
        try:
            return await _on(connection, work)
        except (McpError, anyio.ClosedResourceError, anyio.BrokenResourceError, _Ended) as err:
            if isinstance(err, McpError) and err.error.code not in _SESSION_GONE_CODES:
                raise
            gone = isinstance(err, McpError) and err.error.code == _SESSION_TERMINATED
        await self._drop(connection)
        self._next_reason = "session_gone" if gone else None
        if not (gone or connection.never_sent() or retry_harmless):
            raise SessionLost(
                "the connection to the MCP server dropped during the call; it may have run,"
                " so it was not sent again"
            )
        connection = await self._connection()
        try:
            return await _on(connection, work)
        except (anyio.ClosedResourceError, anyio.BrokenResourceError, _Ended) as err:
            raise SessionLost("the connection to the MCP server dropped again") from err
        except McpError as err:
            if err.error.code in _SESSION_GONE_CODES:
                raise SessionLost("the MCP server dropped the new session too") from err
            raise

    async def _connection(self) -> _Connection:
        """The live connection, set up (with backoff, until the caller's deadline) if needed."""
        async with self._lock:
            current = self._current
            if current is not None and not (current.ended.done() or current.closing.is_set()):
                return current
            delay = FIRST_BACKOFF
            while True:
                if self._closed:
                    raise Unreachable("the runtime is shutting down")
                connection = self._start()
                try:
                    await asyncio.shield(connection.ready)
                except asyncio.CancelledError:
                    await self._drop(connection)
                    raise
                except Exception as err:
                    await self._drop(connection)
                    if not _worth_retrying(connection):
                        raise Unreachable(_describe(err)) from None
                    log.debug("MCP server %s: not reachable yet; retrying", self.server.name)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, MAX_BACKOFF)
                    continue
                self._current = connection
                self._on_initialized(self._next_reason or "connection_lost")
                self._next_reason = None
                return connection

    def _start(self) -> _Connection:
        loop = asyncio.get_running_loop()
        connection = _Connection(ready=loop.create_future(), ended=loop.create_future())
        connection.task = asyncio.create_task(
            self._own(connection), name=f"mcp session {self.server.name}"
        )
        return connection

    async def _own(self, connection: _Connection) -> None:
        """Enter the transport and the session, initialize, hold them until told to close."""
        try:
            async with contextlib.AsyncExitStack() as stack:
                read, write = await stack.enter_async_context(self._transport(connection))
                session = await stack.enter_async_context(
                    ClientSession(read, write, message_handler=self._on_message)
                )
                await session.initialize()
                connection.ready.set_result(session)
                await connection.closing.wait()
        except BaseException as err:  # recorded, then judged by the caller
            connection.causes.extend(_flatten(err))
            if not connection.ready.done():
                connection.ready.set_exception(
                    err if isinstance(err, Exception) else Unreachable("connection cancelled")
                )
        finally:
            connection.ended.set_result(None)
            if self._current is connection:
                self._current = None

    @contextlib.asynccontextmanager
    async def _transport(self, connection: _Connection) -> Any:
        server = self.server

        def client(
            headers: dict[str, str] | None = None,
            timeout: httpx.Timeout | None = None,
            auth: httpx.Auth | None = None,
        ) -> httpx.AsyncClient:
            watched = _Watched(httpx.AsyncHTTPTransport(), lambda err: _dropped(connection, err))
            return httpx.AsyncClient(
                headers=self._headers,
                timeout=httpx.Timeout(server.timeout_seconds, read=STREAM_READ_SECONDS),
                auth=auth,
                transport=watched,
            )

        if server.transport == "sse":
            async with sse_client(
                server.url,
                timeout=server.timeout_seconds,
                sse_read_timeout=STREAM_READ_SECONDS,
                httpx_client_factory=client,
            ) as (read, write):
                yield read, write
            return
        async with (
            client() as http,
            streamable_http_client(server.url, http_client=http) as (read, write, _),
        ):
            yield read, write

    async def _on_message(self, message: Any) -> None:
        if (
            isinstance(message, types.ServerNotification)
            and isinstance(message.root, types.ToolListChangedNotification)
            and self._on_list_changed is not None
        ):
            await self._on_list_changed()

    async def _drop(self, connection: _Connection) -> None:
        connection.closing.set()
        if self._current is connection:
            self._current = None
        task = connection.task
        if task is None or task.done():
            return
        # A transport that will not close (a server that stopped answering) is cancelled.
        try:
            async with asyncio.timeout(1.0):
                await asyncio.shield(connection.ended)
        except TimeoutError:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


class _Watched(httpx.AsyncBaseTransport):
    """The HTTP transport of one connection, telling it when the server dropped a response
    mid-way: the SDK's streamable HTTP client swallows that (the call it answered would then
    wait forever), so the connection is ended and its calls fail over to a new one."""

    def __init__(
        self, inner: httpx.AsyncBaseTransport, on_drop: Callable[[BaseException], None]
    ) -> None:
        self._inner = inner
        self._on_drop = on_drop

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self._inner.handle_async_request(request)
        assert isinstance(response.stream, httpx.AsyncByteStream)
        response.stream = _WatchedStream(response.stream, self._on_drop)
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


class _WatchedStream(httpx.AsyncByteStream):
    def __init__(
        self, inner: httpx.AsyncByteStream, on_drop: Callable[[BaseException], None]
    ) -> None:
        self._inner = inner
        self._on_drop = on_drop

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._inner:
                yield chunk
        except (httpx.ReadError, httpx.RemoteProtocolError) as err:
            self._on_drop(err)
            raise

    async def aclose(self) -> None:
        await self._inner.aclose()


def _dropped(connection: _Connection, err: BaseException) -> None:
    """A response of the connection was cut: end the connection (its calls see `_Ended`)."""
    connection.causes.append(err)
    connection.closing.set()


class _Ended(Exception):
    """The connection ended under a call (the SDK may leave such a call waiting forever)."""


async def _on(connection: _Connection, work: Callable[[ClientSession], Awaitable[T]]) -> T:
    """`work` on the connection's session, ended by `_Ended` if the connection ends first:
    the SDK's transports can end without answering the requests in flight."""
    task = asyncio.ensure_future(work(connection.ready.result()))
    try:
        await asyncio.wait((task, connection.ended), return_when=asyncio.FIRST_COMPLETED)
    finally:
        if not task.done():
            task.cancel()
    if not task.done() or task.cancelled():
        raise _Ended()
    return task.result()


def _flatten(err: BaseException) -> list[BaseException]:
    """The leaf exceptions of (nested) exception groups, each with its causes."""
    if isinstance(err, BaseExceptionGroup):
        return [leaf for inner in err.exceptions for leaf in _flatten(inner)]
    found = [err]
    while err.__cause__ is not None or err.__context__ is not None:
        err = err.__cause__ or err.__context__  # type: ignore[assignment]
        found.append(err)
    return found


def _worth_retrying(connection: _Connection) -> bool:
    """A handshake that failed for want of a server (refused, reset, 502/503 from a proxy)
    may work in a moment; one the server answered (401/403, 404 for a wrong path, a protocol
    error) will not, and fails the call at once instead of holding it to its deadline."""
    answered = [c for c in connection.causes if isinstance(c, httpx.HTTPStatusError)]
    if any(c.response.status_code not in (502, 503) for c in answered):
        return False
    dropped = (httpx.ReadError, httpx.RemoteProtocolError, *_NEVER_SENT)
    return bool(answered) or any(isinstance(cause, dropped) for cause in connection.causes)


def _describe(err: BaseException) -> str:
    """Why the handshake failed, without a URL's credentials or a header: the status, or the
    kind of error."""
    for leaf in _flatten(err):
        if isinstance(leaf, httpx.HTTPStatusError):
            return f"the server answered HTTP {leaf.response.status_code}"
        if isinstance(leaf, McpError) and leaf.error.code == _SESSION_TERMINATED:
            return "the server answered HTTP 404"
        if isinstance(leaf, McpError):
            return f"the server refused the handshake: {leaf.error.message[:200]}"
    leaf = _flatten(err)[0]
    return f"could not connect ({type(leaf).__name__})"
