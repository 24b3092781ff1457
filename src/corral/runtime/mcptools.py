"""The MCP servers' tools, offered to the model beside the HTTP and agent tools.

`McpTools` is the `tools.Catalog` of an Agent's MCP servers: one `mcpsessions.Session` per
server, a keeper task per server that lists its tools at start-up, again when the server
sends `tools/list_changed` and every `refresh_seconds` (sooner, with backoff, while it cannot be
reached), and the entries the `ToolRunner` serves calls from. A server that cannot be reached
keeps the tools it listed last (a call then becomes a tool error the model reads); the Agent's
other tools are never held up by it.

Naming rule (deterministic, collision-free): the function for tool `T` of MCPServer `S` is
`S__T`, with the dots of `S` as underscores. If that is not a valid function name (longer than
64 characters, or `T` holds characters outside `A-Z a-z 0-9 _ -`), it is the first 55
characters of that name with every other character as `_`, then `_` and the first 8 hex digits
of SHA-256 of `S/T`. Tool names have no underscores, and an MCPServer's name has no `__`, so no
MCP function can take a Tool's name or another server's. A name that is still taken (only a
forced hash collision could do it) is skipped with a warning; servers are taken in the Agent's
order and each server's tools by name, so the same lists always give the same functions.

Arguments are validated against the tool's `inputSchema` by the runner, like any tool; the
result's text blocks (or its structured content, as JSON, when there is no text) are capped
at `maxResultBytes` with the same note as HTTP tools; `isError` results, JSON-RPC errors,
lost sessions and timeouts reach the model as `error: ...` tool results. A traced call sends
its W3C trace context in the request's `params._meta`. Does network I/O.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import json
import logging
import re
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import httpx
import jsonschema
from mcp import types
from mcp.shared.exceptions import McpError

from corral.api.runtimeconfig import McpServerConfig
from corral.runtime import mcpsessions, tools, tracing

log = logging.getLogger(__name__)

FUNCTION_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
MAX_TOOLS_PER_SERVER = 128
MAX_DESCRIPTION = 1024
KIND = "mcp"


class Observer(Protocol):
    """Where MCP metrics go (`metrics.Metrics`); labels are the server and the tool's name."""

    def mcp_call(self, server: str, tool: str, outcome: str, seconds: float) -> None: ...

    def mcp_session(self, server: str, reason: str) -> None: ...

    def mcp_tools(self, server: str, count: int) -> None: ...


def function_name(server: str, tool: str) -> str:
    """The function name the model sees for `tool` of `server` (see the module docstring)."""
    plain = f"{server.replace('.', '_')}__{tool}"
    if FUNCTION_NAME.fullmatch(plain):
        return plain
    digest = hashlib.sha256(f"{server}/{tool}".encode()).hexdigest()[:8]
    return f"{re.sub(r'[^a-zA-Z0-9_-]', '_', plain)[:55]}_{digest}"


def result_text(result: types.CallToolResult) -> str:
    """What the model reads of a result: its text blocks; its structured content as JSON when
    it has no text; a short note for each block of another kind (image, audio, ...)."""
    parts: list[str] = []
    for block in result.content:
        if isinstance(block, types.TextContent):
            parts.append(block.text)
        elif isinstance(block, types.EmbeddedResource) and isinstance(
            block.resource, types.TextResourceContents
        ):
            parts.append(block.resource.text)
        elif isinstance(block, types.ResourceLink):
            parts.append(f"[resource: {block.uri}]")
        else:
            parts.append(f"[{block.type} content not shown]")
    texts = any(isinstance(block, types.TextContent) for block in result.content)
    if not texts and result.structuredContent is not None:
        parts.insert(0, json.dumps(result.structuredContent, ensure_ascii=False))
    return "\n".join(parts)


@dataclasses.dataclass(frozen=True)
class McpTarget:
    """One tool of one MCP server (a `tools.Target`)."""

    session: mcpsessions.Session
    tool: str
    retry_harmless: bool
    max_bytes: int

    async def call(self, call: tools.Call, arguments: dict[str, Any]) -> str:
        server = self.session.server.name
        # The W3C trace context goes in `params._meta` (OpenTelemetry's MCP conventions).
        meta: dict[str, Any] = {}
        if call.span.is_recording():
            tracing.inject(meta, call.span)
        try:
            result = await self.session.call_tool(
                self.tool, arguments, self.retry_harmless, meta or None
            )
        except mcpsessions.Unreachable as err:
            raise tools.ToolFailed(
                "unreachable", f"the MCP server {server!r} could not be reached: {err}"
            ) from None
        except mcpsessions.SessionLost as err:
            raise tools.ToolFailed("connection_lost", f"MCP server {server!r}: {err}") from None
        except McpError as err:
            message = call.redact.excerpt(err.error.message, tools.ERROR_EXCERPT)
            raise tools.ToolFailed("error", f"the MCP server refused the call: {message}") from None
        except RuntimeError as err:  # the SDK's check of structured content against outputSchema
            message = call.redact.excerpt(str(err), tools.ERROR_EXCERPT)
            raise tools.ToolFailed("invalid_result", message) from None
        except httpx.HTTPError as err:
            raise tools.ToolFailed(
                "error", f"the MCP server {server!r} failed ({type(err).__name__})"
            ) from None
        text = result_text(result)
        if result.isError:
            raise tools.ToolFailed("tool_error", call.redact.excerpt(text, tools.ERROR_EXCERPT))
        encoded, limit = text.encode(), self.max_bytes
        return tools.capped(encoded[:limit], limit, len(encoded) > limit)


@dataclasses.dataclass(eq=False)
class _Server:
    config: McpServerConfig
    session: mcpsessions.Session
    changed: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)
    listed_once: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)
    listed: list[types.Tool] = dataclasses.field(default_factory=list)
    task: asyncio.Task[None] | None = None


class McpTools:
    """The tools of an Agent's MCP servers; a `tools.Catalog`. One per app."""

    def __init__(
        self,
        servers: Sequence[McpServerConfig],
        env: Mapping[str, str],
        observer: Observer,
        refresh_seconds: float = 300,
        taken: frozenset[str] = frozenset(),
    ) -> None:
        self._observer = observer
        self._refresh = refresh_seconds
        self._taken = taken
        self._servers: list[_Server] = []
        self._entries: dict[str, tools.Entry] = {}
        self._definitions: list[dict[str, Any]] = []
        for config in servers:
            headers = dict(config.headers)
            for header, var in config.header_envs.items():
                if var not in env:
                    raise tools.ToolConfigError(
                        f"MCP server {config.name!r}: header {header} needs ${var}, not set"
                    )
                headers[header] = env[var]
            changed = asyncio.Event()
            session = mcpsessions.Session(
                config,
                headers,
                on_initialized=_initialized(observer, config.name),
                on_list_changed=_setter(changed),
            )
            self._servers.append(_Server(config, session, changed))

    @property
    def definitions(self) -> list[dict[str, Any]]:
        return self._definitions

    def entry(self, name: str) -> tools.Entry | None:
        return self._entries.get(name)

    async def start(self, wait_seconds: float) -> None:
        """Start every server's keeper; wait (at most `wait_seconds`) for each first listing."""
        for server in self._servers:
            server.task = asyncio.create_task(
                self._keep(server), name=f"mcp tools {server.config.name}"
            )
        firsts = [asyncio.create_task(s.listed_once.wait()) for s in self._servers]
        if firsts:
            _, pending = await asyncio.wait(firsts, timeout=wait_seconds)
            for task in pending:
                task.cancel()

    async def close(self) -> None:
        for server in self._servers:
            if server.task is not None:
                server.task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await server.task
        await asyncio.gather(*(server.session.close() for server in self._servers))

    async def _keep(self, server: _Server) -> None:
        """List the server's tools now, on `tools/list_changed` and periodically, forever."""
        failures = 0
        while True:
            server.changed.clear()
            try:
                async with asyncio.timeout(server.config.timeout_seconds):
                    listed = await server.session.list_tools()
            except Exception as err:  # anything: the Agent keeps serving its other tools
                failures += 1
                log.warning(
                    "MCP server %s: tools not listed: %s",
                    server.config.name,
                    err if isinstance(err, mcpsessions.Unreachable) else type(err).__name__,
                )
                wait = min(self._refresh, 2.0**failures)
            else:
                failures = 0
                server.listed = listed
                self._rebuild()
                wait = self._refresh
            server.listed_once.set()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await server.changed.wait()

    def _rebuild(self) -> None:
        """Entries and definitions from every server's last listing, in the documented order."""
        entries: dict[str, tools.Entry] = {}
        definitions: list[dict[str, Any]] = []
        for server in self._servers:
            offered = 0
            for tool in self._offered(server):
                name = function_name(server.config.name, tool.name)
                if name in entries or name in self._taken:
                    log.warning("MCP tool %s of %s: %s taken", tool.name, server.config.name, name)
                    continue
                built = self._entry(server, tool)
                if built is None:
                    continue
                entries[name], schema = built
                description = (tool.description or tool.title or tool.name)[:MAX_DESCRIPTION]
                definitions.append(tools.definition(name, description, schema))
                offered += 1
            self._observer.mcp_tools(server.config.name, offered)
        self._entries, self._definitions = entries, definitions

    def _offered(self, server: _Server) -> list[types.Tool]:
        allowed = server.config.tools
        listed = sorted(server.listed, key=lambda tool: tool.name)
        chosen = [t for t in listed if allowed is None or t.name in allowed]
        return chosen[:MAX_TOOLS_PER_SERVER]

    def _entry(
        self, server: _Server, tool: types.Tool
    ) -> tuple[tools.Entry, dict[str, Any]] | None:
        schema = dict(tool.inputSchema)
        try:
            if schema.get("type") != "object":
                raise jsonschema.SchemaError("the type of an inputSchema must be object")
            validator = tools.validator_for(schema)
            validator.check_schema(schema)
        except jsonschema.SchemaError as err:
            log.warning(
                "MCP tool %s of %s not offered: bad inputSchema: %s",
                tool.name,
                server.config.name,
                err.message,
            )
            return None
        hints = tool.annotations
        harmless = hints is not None and bool(hints.readOnlyHint or hints.idempotentHint)
        target = McpTarget(server.session, tool.name, harmless, server.config.max_result_bytes)
        observer, server_name, tool_name = self._observer, server.config.name, tool.name

        def record(function: str, outcome: str, seconds: float) -> None:
            observer.mcp_call(server_name, tool_name, outcome, seconds)

        timeout = server.config.timeout_seconds
        return tools.Entry(target, validator, timeout, KIND, record), schema


def _setter(event: asyncio.Event) -> mcpsessions.OnListChanged:
    async def set_event() -> None:
        event.set()

    return set_event


def _initialized(observer: Observer, server: str) -> mcpsessions.OnInitialized:
    def record(reason: str) -> None:
        observer.mcp_session(server, reason)

    return record
