"""Discover an MCPServer: initialize a session with the official `mcp` SDK client and list its
tools, bounded by the server's `timeoutSeconds`.

`discover` returns a `Discovery` (never raises for what the server did) whose reason is one of
`DISCOVERED`, `UNREACHABLE`, `AUTH_FAILED`, `HANDSHAKE_FAILED`. The session is closed before
it returns. Header values (some read from Secrets by the caller) go to the server only, never
into the message. Called by `mcpservers`, once per MCPServer in its own task; does network I/O.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator, Mapping
from typing import Any

import httpx
from mcp import types
from mcp.client.session import ClientSession
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.exceptions import McpError

from corral.api.mcpservers import MCPServerSpec

DISCOVERED = "Discovered"
UNREACHABLE = "Unreachable"
AUTH_FAILED = "AuthFailed"
HANDSHAKE_FAILED = "HandshakeFailed"
MAX_PAGES = 20
SESSION_TERMINATED = 32600  # the SDK's error code for an HTTP 404 from a streamable endpoint


@dataclasses.dataclass(frozen=True)
class Discovery:
    """What one discovery found: Ready's reason and message, and the tools when it worked."""

    reason: str
    message: str
    tools: tuple[types.Tool, ...] | None = None

    @property
    def ok(self) -> bool:
        return self.reason == DISCOVERED


async def discover(spec: MCPServerSpec, headers: Mapping[str, str]) -> Discovery:
    """Initialize + tools/list against the server, all within `spec.timeout_seconds`."""
    try:
        async with asyncio.timeout(spec.timeout_seconds):
            async with _session(spec, headers) as (session, init):
                tools = await _list(session)
    except TimeoutError:
        return Discovery(
            UNREACHABLE, f"no answer to the MCP handshake within {spec.timeout_seconds}s"
        )
    except Exception as err:  # whatever the server or the network did, as a reason
        return _failure(err)
    server = init.serverInfo
    return Discovery(
        DISCOVERED,
        f"{len(tools)} tools listed by {server.name} {server.version}"[:1024],
        tuple(tools),
    )


@contextlib.asynccontextmanager
async def _session(
    spec: MCPServerSpec, headers: Mapping[str, str]
) -> AsyncIterator[tuple[ClientSession, types.InitializeResult]]:
    async with contextlib.AsyncExitStack() as stack:
        if spec.transport == "sse":
            read, write = await stack.enter_async_context(
                sse_client(spec.url, headers=dict(headers), timeout=spec.timeout_seconds)
            )
        else:
            http = await stack.enter_async_context(
                create_mcp_http_client(
                    headers=dict(headers), timeout=httpx.Timeout(spec.timeout_seconds)
                )
            )
            read, write, _ = await stack.enter_async_context(
                streamable_http_client(spec.url, http_client=http)
            )
        session = await stack.enter_async_context(ClientSession(read, write))
        yield session, await session.initialize()


async def _list(session: ClientSession) -> list[types.Tool]:
    tools: list[types.Tool] = []
    cursor: str | None = None
    for _ in range(MAX_PAGES):
        params = types.PaginatedRequestParams(cursor=cursor) if cursor else None
        page = await session.list_tools(params=params)
        tools.extend(page.tools)
        cursor = page.nextCursor
        if not cursor:
            break
    return tools


def _failure(err: BaseException) -> Discovery:
    leaves = _leaves(err)
    for leaf in leaves:
        if isinstance(leaf, httpx.HTTPStatusError):
            status = leaf.response.status_code
            if status in (401, 403):
                return Discovery(
                    AUTH_FAILED,
                    f"the server answered HTTP {status}: check headers and headersFrom",
                )
            return Discovery(HANDSHAKE_FAILED, f"the server answered HTTP {status}")
        if isinstance(leaf, McpError) and leaf.error.code == SESSION_TERMINATED:
            # What the SDK's streamable HTTP client makes of a 404 (no MCP endpoint there).
            return Discovery(HANDSHAKE_FAILED, "the server answered HTTP 404")
        if isinstance(leaf, McpError):
            return Discovery(HANDSHAKE_FAILED, f"MCP error: {leaf.error.message[:300]}")
    for leaf in leaves:
        if isinstance(leaf, httpx.TransportError | OSError):
            return Discovery(UNREACHABLE, f"could not connect ({type(leaf).__name__})")
    return Discovery(HANDSHAKE_FAILED, f"the handshake failed ({type(leaves[0]).__name__})")


def _leaves(err: BaseException) -> list[BaseException]:
    if isinstance(err, BaseExceptionGroup):
        return [leaf for inner in err.exceptions for leaf in _leaves(inner)]
    found: list[BaseException] = [err]
    seen: Any = err
    while seen.__cause__ is not None or seen.__context__ is not None:
        seen = seen.__cause__ or seen.__context__
        found.append(seen)
    return found
