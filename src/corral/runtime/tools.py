"""The tools the model may call, run on the server: the runner every kind of tool shares.

`ToolRunner` serves the model's calls from catalogs of entries: the configured HTTP and agent
tools (`httptools.ToolSet`) and the MCP servers' tools (`mcptools.McpTools`). For each call
the model makes it parses the arguments (bounded depth) and validates them against the tool's
JSON Schema, then runs the entry's target with the tool's timeout. Each call is an
`execute_tool {name}` span whose context the target sends on (so a called Agent's spans join
the same trace). Every failure becomes an `error: ...` result the model reads, never an
exception out of `run`. Also here: what every kind shares (`Call`, `Entry`, `ToolFailed`, the
cut note of `capped`). Called by the agent loop; does I/O only through the targets.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import httpx2
import jsonschema
from opentelemetry import trace

from corral.runtime import callchain, redaction, tracing
from corral.runtime.providers import base

ERROR_EXCERPT = 2048
# Deeper arguments are refused before validation: no tool schema needs them, and the JSON
# decoder and the validator both recurse.
MAX_ARGUMENT_DEPTH = 32
Recorder = Callable[[str, str, float], None]


class ToolConfigError(ValueError):
    """A tool in the config cannot be served safely (e.g. a placeholder in the host)."""


class ToolFailed(Exception):
    """One call failed; `outcome` is the bounded metric label, the message goes to the model."""

    def __init__(self, outcome: str, message: str) -> None:
        super().__init__(message)
        self.outcome = outcome


@dataclass(frozen=True, slots=True)
class ToolResult:
    """What a call produced, as the `tool` message content the model will read."""

    call_id: str
    name: str
    content: str
    outcome: str

    def message(self) -> dict[str, Any]:
        return {"role": "tool", "tool_call_id": self.call_id, "content": self.content}


@dataclass(frozen=True, slots=True)
class Call:
    """What one tool call needs besides its arguments: the HTTP client, the call chain, the
    redactor, and its span (whose context goes out with the request)."""

    client: httpx2.AsyncClient
    chain: callchain.Chain
    redact: redaction.Redactor
    span: trace.Span = trace.INVALID_SPAN


class Target(Protocol):
    async def call(self, call: Call, arguments: dict[str, Any]) -> str: ...


def capped(body: bytes, max_bytes: int, cut: bool) -> str:
    """A tool's answer as the model reads it; a cut one says so (every kind of tool)."""
    text = body.decode("utf-8", errors="replace")
    return text + (f"\n[response cut at {max_bytes} bytes]" if cut else "")


@dataclass(frozen=True, slots=True)
class Entry:
    """How one offered function is served: its target, argument validator and timeout, its
    kind (a span attribute) and, for MCP tools, its own metrics recorder."""

    target: Target
    validator: jsonschema.protocols.Validator
    timeout: float
    kind: str
    record: Recorder | None = None


class Catalog(Protocol):
    """Tools offered beside the configured ones (MCP servers' tools; they may change)."""

    @property
    def definitions(self) -> list[dict[str, Any]]: ...

    def entry(self, name: str) -> Entry | None: ...


def validator_for(schema: dict[str, Any]) -> jsonschema.protocols.Validator:
    """A validator of the tool's JSON Schema (draft 2020-12 unless the schema says otherwise)."""
    cls = jsonschema.validators.validator_for(schema, jsonschema.Draft202012Validator)
    return cls(schema)


def definition(name: str, description: str, parameters: dict[str, Any]) -> dict[str, Any]:
    """One function as the model is offered it (OpenAI tools format)."""
    return {
        "type": "function",
        "function": {"name": name, "description": description, "parameters": parameters},
    }


class ToolRunner:
    """Runs the model's tool calls over one long-lived client; one instance per app. The
    configured tools come first; `extra` (the MCP servers' tools) is asked for the rest."""

    def __init__(
        self,
        toolset: Catalog,
        client: httpx2.AsyncClient,
        record: Recorder,
        max_parallel: int = 16,
        redact: redaction.Redactor | None = None,
        tracer: trace.Tracer | None = None,
        extra: Catalog | None = None,
    ) -> None:
        self._catalogs: tuple[Catalog, ...] = (toolset,) if extra is None else (toolset, extra)
        self._tracer = tracer or trace.NoOpTracer()
        self._client = client
        self._record = record
        self._max_parallel = max_parallel
        self._redact = redact or redaction.Redactor()

    @property
    def definitions(self) -> list[dict[str, Any]]:
        """What the model is offered now (MCP tools come and go with their servers)."""
        if len(self._catalogs) == 1:
            return self._catalogs[0].definitions
        return [d for catalog in self._catalogs for d in catalog.definitions]

    def _entry(self, name: str) -> Entry | None:
        for catalog in self._catalogs:
            found = catalog.entry(name)
            if found is not None:
                return found
        return None

    async def run(
        self, calls: Sequence[base.ToolCall], chain: callchain.Chain, trace_parent: Any = None
    ) -> list[ToolResult]:
        """Run one model turn's calls (in parallel, bounded); results in the calls' order.
        `trace_parent` (an OpenTelemetry Context) is the parent of each call's span."""
        shared = Call(self._client, chain, self._redact)
        if len(calls) == 1:
            return [await self.run_one(calls[0], shared, trace_parent)]
        gate = asyncio.Semaphore(self._max_parallel)

        async def bounded(call: base.ToolCall) -> ToolResult:
            async with gate:
                return await self.run_one(call, shared, trace_parent)

        return list(await asyncio.gather(*(bounded(c) for c in calls)))

    async def run_one(
        self, call: base.ToolCall, shared: Call, trace_parent: Any = None
    ) -> ToolResult:
        started = time.perf_counter()
        entry = self._entry(call.name)
        span = self._span(call, entry, trace_parent)
        try:
            content = await self._dispatch(call, entry, dataclasses.replace(shared, span=span))
            outcome = "ok"
        except ToolFailed as failure:
            content, outcome = f"error: {failure}", failure.outcome
        except (TimeoutError, httpx2.TimeoutException):
            limit = entry.timeout if entry is not None else 0
            content, outcome = f"error: the tool did not answer within {limit:g}s", "timeout"
        except (httpx2.HTTPError, httpx2.InvalidURL) as err:
            content = f"error: the tool could not be reached ({type(err).__name__})"
            outcome = "error"
        except BaseException:
            span.end()  # the request was cancelled mid-call
            raise
        if outcome != "ok" and span.is_recording():
            span.set_attribute(tracing.ERROR_TYPE, outcome)
            span.set_status(trace.StatusCode.ERROR)
        span.end()
        record = entry.record if entry is not None and entry.record else self._record
        record(call.name, outcome, time.perf_counter() - started)
        return ToolResult(call.id, call.name, content, outcome)

    def _span(self, call: base.ToolCall, entry: Entry | None, parent: Any) -> trace.Span:
        span = self._tracer.start_span(f"execute_tool {call.name}", context=parent)
        if span.is_recording():
            span.set_attribute(tracing.OPERATION, "execute_tool")
            span.set_attribute(tracing.TOOL_NAME, call.name)
            span.set_attribute(tracing.TOOL_CALL_ID, call.id)
            span.set_attribute(tracing.TOOL_TYPE, "function")
            span.set_attribute("corral.tool.kind", entry.kind if entry else "unknown")
        return span

    async def _dispatch(self, call: base.ToolCall, entry: Entry | None, shared: Call) -> str:
        if entry is None:
            names = sorted(d["function"]["name"] for d in self.definitions)
            known = ", ".join(names) or "none"
            raise ToolFailed("unknown_tool", f"there is no tool {call.name!r} (tools: {known})")
        arguments = parse_arguments(call.arguments)
        problem = jsonschema.exceptions.best_match(entry.validator.iter_errors(arguments))
        if problem is not None:
            where = "/".join(str(p) for p in problem.absolute_path) or "arguments"
            raise ToolFailed(
                "invalid_arguments", f"invalid arguments at {where}: {problem.message}"
            )
        async with asyncio.timeout(entry.timeout):
            return await entry.target.call(shared, arguments)


def parse_arguments(text: str) -> dict[str, Any]:
    """The model's argument JSON as an object ({} for empty text), at most MAX_ARGUMENT_DEPTH
    levels deep: the depth is checked on the text before the recursive decoder sees it."""
    if not text.strip():
        return {}
    if _nesting(text) > MAX_ARGUMENT_DEPTH:
        raise ToolFailed(
            "invalid_arguments", f"arguments nest deeper than {MAX_ARGUMENT_DEPTH} levels"
        )
    try:
        value = json.loads(text)
    except ValueError as err:
        raise ToolFailed("invalid_arguments", f"arguments are not valid JSON: {err}") from err
    if not isinstance(value, dict):
        raise ToolFailed("invalid_arguments", "arguments must be a JSON object")
    return value


_BRACKETS_OR_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]')


def _nesting(text: str) -> int:
    """The deepest bracket nesting of JSON text, brackets inside strings not counted."""
    depth = deepest = 0
    for match in _BRACKETS_OR_STRINGS.finditer(text):
        token = match.group()
        if token in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif token in "]}":
            depth -= 1
    return deepest
