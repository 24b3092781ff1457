"""The tools the model may call, run on the server: HTTP endpoints and other agents.

`ToolSet` checks the config's tools at startup; `ToolRunner` serves them over one long-lived
httpx2 client (the openai SDK's client library, on aiohttp) created by the app's lifespan. For
each call the model makes it parses the arguments (bounded depth) and validates them against
the tool's JSON Schema, then runs it with the tool's timeout and response size cap (counted on
the decoded body, so a compressed answer can neither reach the model compressed nor expand past
the cap). A tool can only reach what its config declares: URL placeholders are filled with
percent-encoded values (a value cannot add a path segment, a query or a host), the final URL
must keep the declared scheme, host and port, and redirects are never followed (a 3xx answer
is refused as a tool error). An agent tool carries the call chain (`callchain`) and refuses a
cycle or a chain deeper than `maxCallDepth`. Error text from a tool endpoint is bounded and
redacted before the model reads it. Each call is an `execute_tool {name}` span, and its W3C
trace context goes out with the HTTP request, so a called Agent's spans join the same trace.
Every failure becomes an `error: ...` result the model reads, never an exception out of `run`.
Called by the agent loop; does network I/O.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
import time
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import httpx2
import jsonschema
from opentelemetry import trace

from corral.api.runtimeconfig import AgentCall, HttpCall, RuntimeTool
from corral.runtime import callchain, redaction, tracing
from corral.runtime.providers import base

PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
ERROR_EXCERPT = 2048
# Deeper arguments are refused before validation: no tool schema needs them, and the JSON
# decoder and the validator both recurse.
MAX_ARGUMENT_DEPTH = 32
MAX_URL_LENGTH = 8192
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


class HttpTarget:
    """An HTTP endpoint with a URL template."""

    def __init__(self, name: str, spec: HttpCall, env: Mapping[str, str]) -> None:
        template = urllib.parse.urlsplit(spec.url)
        if PLACEHOLDER.search(f"{template.scheme}://{template.netloc}"):
            raise ToolConfigError(f"tool {name!r}: placeholders may not appear in the URL's host")
        self._name = name
        self._spec = spec
        self._origin = _origin(httpx2.URL(PLACEHOLDER.sub("x", spec.url)))
        self._placeholders = frozenset(PLACEHOLDER.findall(spec.url))
        self._headers = dict(spec.headers)
        for header, var in spec.header_envs.items():
            if var not in env:
                raise ToolConfigError(f"tool {name!r}: header {header} needs ${var}, not set")
            self._headers[header] = env[var]

    def url_for(self, arguments: Mapping[str, Any]) -> httpx2.URL:
        """The templated URL; ToolFailed when a value is missing or would leave the origin."""

        def fill(match: re.Match[str]) -> str:
            key = match.group(1)
            if key not in arguments:
                raise ToolFailed("invalid_arguments", f"missing argument {key!r} for the URL")
            text = _scalar(arguments[key])
            if text in ("", ".", ".."):
                raise ToolFailed("invalid_arguments", f"argument {key!r} is empty or a dot path")
            return urllib.parse.quote(text, safe="")

        url = _url(PLACEHOLDER.sub(fill, self._spec.url))
        if _origin(url) != self._origin:
            raise ToolFailed("refused", "the arguments would send the call to another host")
        return url

    async def call(self, call: Call, arguments: dict[str, Any]) -> str:
        url = self.url_for(arguments)
        rest = {k: v for k, v in arguments.items() if k not in self._placeholders}
        method = self._spec.method
        query: list[tuple[str, str | int | float | bool | None]] = (
            [(k, _scalar(v)) for k, v in rest.items()] if method in ("GET", "DELETE") else []
        )
        target = url.copy_merge_params(query) if query else url
        _check_length(str(target))
        request = call.client.build_request(
            method,
            target,
            json=rest if method not in ("GET", "DELETE") else None,
            headers=self._headers,
            timeout=self._spec.timeout_seconds,
        )
        return await fetch(call, request, self._spec.max_response_bytes, self._origin)


class AgentTarget:
    """Another Agent's OpenAI endpoint: the arguments become the user message."""

    def __init__(self, spec: AgentCall, namespace: str, max_bytes: int = 1_048_576) -> None:
        self._spec = spec
        self._max_bytes = max_bytes
        self._url = httpx2.URL(spec.base_url.rstrip("/") + "/chat/completions")
        self._origin = _origin(self._url)
        # Agent tools call Agents of the same namespace (the operator resolves them there).
        self._identity = f"{namespace}/{spec.model}"

    async def call(self, call: Call, arguments: dict[str, Any]) -> str:
        try:
            call.chain.check_call(self._identity)
        except callchain.Refused as refused:
            raise ToolFailed("refused", str(refused)) from None
        strings = [v for v in arguments.values() if isinstance(v, str)]
        text = strings[0] if len(arguments) == 1 and strings else json.dumps(arguments)
        request = call.client.build_request(
            "POST",
            self._url,
            json={"model": self._spec.model, "messages": [{"role": "user", "content": text}]},
            headers={callchain.HEADER: call.chain.header()},
            timeout=self._spec.timeout_seconds,
        )
        body = await fetch(call, request, self._max_bytes, self._origin)
        try:
            content = json.loads(body)["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError) as err:
            raise ToolFailed(
                "error", "the agent answered something other than a chat completion"
            ) from err
        return content if isinstance(content, str) else ""


async def fetch(
    call: Call, request: httpx2.Request, max_bytes: int, origin: tuple[str, ...]
) -> str:
    """Send without following redirects; the decoded body, cut at `max_bytes`. ToolFailed on
    3xx/4xx/5xx, with the endpoint's error text bounded and redacted."""
    if _origin(request.url) != origin:
        raise ToolFailed("refused", "the call would leave the tool's declared host")
    tracing.inject(request.headers, call.span)
    response = await call.client.send(request, stream=True, follow_redirects=False)
    try:
        if response.is_redirect or 300 <= response.status_code < 400:
            raise ToolFailed(
                "redirect_refused",
                f"the tool endpoint answered {response.status_code} (a redirect);"
                " redirects are not followed",
            )
        body, cut = await _read_capped(response, max_bytes)
    finally:
        await response.aclose()
    if response.status_code >= 400:
        excerpt = call.redact.excerpt(body.decode("utf-8", errors="replace"), ERROR_EXCERPT)
        raise ToolFailed("http_error", f"HTTP {response.status_code}: {excerpt}")
    return capped(body, max_bytes, cut)


def capped(body: bytes, max_bytes: int, cut: bool) -> str:
    """A tool's answer as the model reads it; a cut one says so (every kind of tool)."""
    text = body.decode("utf-8", errors="replace")
    return text + (f"\n[response cut at {max_bytes} bytes]" if cut else "")


async def _read_capped(response: httpx2.Response, max_bytes: int) -> tuple[bytes, bool]:
    """The decoded body (gzip, deflate, br: as the endpoint labelled it), at most `max_bytes`:
    reading stops there, so a small compressed answer cannot expand into memory."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        chunks.append(chunk)
        size += len(chunk)
        if size > max_bytes:
            return b"".join(chunks)[:max_bytes], True
    return b"".join(chunks), False


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


class ToolSet:
    """The configured tools, checked: what the model is offered and how each call is served.
    Built at startup (raises ToolConfigError for a tool that cannot be served); pure."""

    def __init__(
        self, tools: Sequence[RuntimeTool], env: Mapping[str, str], namespace: str = "default"
    ) -> None:
        self.entries: dict[str, Entry] = {}
        self.definitions: list[dict[str, Any]] = []
        for tool in tools:
            validator = validator_for(tool.parameters)
            if tool.http is not None:
                target: Target = HttpTarget(tool.name, tool.http, env)
                entry = Entry(target, validator, tool.http.timeout_seconds, "http")
            else:
                assert tool.agent is not None  # the config model requires one of the two
                target = AgentTarget(tool.agent, namespace)
                entry = Entry(target, validator, tool.agent.timeout_seconds, "agent")
            self.entries[tool.name] = entry
            self.definitions.append(definition(tool.name, tool.description, tool.parameters))

    def entry(self, name: str) -> Entry | None:
        return self.entries.get(name)


class ToolRunner:
    """Runs the model's tool calls over one long-lived client; one instance per app. The
    configured tools come first; `extra` (the MCP servers' tools) is asked for the rest."""

    def __init__(
        self,
        toolset: ToolSet,
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


def _scalar(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value, separators=(",", ":"))


def _check_length(url: str) -> None:
    if len(url) > MAX_URL_LENGTH:
        raise ToolFailed(
            "invalid_arguments",
            f"the arguments make the URL longer than {MAX_URL_LENGTH} characters",
        )


def _url(text: str) -> httpx2.URL:
    _check_length(text)
    try:
        return httpx2.URL(text)
    except httpx2.InvalidURL as err:
        raise ToolFailed("invalid_arguments", f"the arguments make an invalid URL: {err}") from None


def _origin(url: httpx2.URL) -> tuple[str, ...]:
    port = url.port or {"http": 80, "https": 443}.get(url.scheme, 0)
    return (url.scheme, url.host, str(port))
