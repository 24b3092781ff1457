"""The tools the model may call, run on the server: HTTP endpoints and other agents.

`ToolSet` checks the config's tools at startup; `ToolRunner` serves them over one long-lived
httpx client created by the app's lifespan. For each call the model makes it validates the
arguments against the tool's JSON Schema, then runs it with the tool's timeout and response
size cap. A tool can only reach what its config declares: URL placeholders are filled with
percent-encoded values (a value cannot add a path segment, a query or a host), the final URL
must keep the declared scheme, host and port, and redirects are never followed (a 3xx answer
is refused as a tool error). Every failure becomes an `error: ...` result the model reads,
never an exception out of `run`. Called by the agent loop; does network I/O.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import httpx
import jsonschema

from corral.api.runtimeconfig import AgentCall, HttpCall, RuntimeTool
from corral.runtime.providers import base

PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
ERROR_EXCERPT = 2048
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


class Target(Protocol):
    async def call(self, client: httpx.AsyncClient, arguments: dict[str, Any]) -> str: ...


class HttpTarget:
    """An HTTP endpoint with a URL template."""

    def __init__(self, name: str, spec: HttpCall, env: Mapping[str, str]) -> None:
        template = urllib.parse.urlsplit(spec.url)
        if PLACEHOLDER.search(f"{template.scheme}://{template.netloc}"):
            raise ToolConfigError(f"tool {name!r}: placeholders may not appear in the URL's host")
        self._name = name
        self._spec = spec
        self._origin = _origin(httpx.URL(PLACEHOLDER.sub("x", spec.url)))
        self._placeholders = frozenset(PLACEHOLDER.findall(spec.url))
        self._headers = dict(spec.headers)
        for header, var in spec.header_envs.items():
            if var not in env:
                raise ToolConfigError(f"tool {name!r}: header {header} needs ${var}, not set")
            self._headers[header] = env[var]

    def url_for(self, arguments: Mapping[str, Any]) -> httpx.URL:
        """The templated URL; ToolFailed when a value is missing or would leave the origin."""

        def fill(match: re.Match[str]) -> str:
            key = match.group(1)
            if key not in arguments:
                raise ToolFailed("invalid_arguments", f"missing argument {key!r} for the URL")
            text = _scalar(arguments[key])
            if text in ("", ".", ".."):
                raise ToolFailed("invalid_arguments", f"argument {key!r} is empty or a dot path")
            return urllib.parse.quote(text, safe="")

        url = httpx.URL(PLACEHOLDER.sub(fill, self._spec.url))
        if _origin(url) != self._origin:
            raise ToolFailed("refused", "the arguments would send the call to another host")
        return url

    async def call(self, client: httpx.AsyncClient, arguments: dict[str, Any]) -> str:
        url = self.url_for(arguments)
        rest = {k: v for k, v in arguments.items() if k not in self._placeholders}
        method = self._spec.method
        query: list[tuple[str, str | int | float | bool | None]] = (
            [(k, _scalar(v)) for k, v in rest.items()] if method in ("GET", "DELETE") else []
        )
        request = client.build_request(
            method,
            url.copy_merge_params(query) if query else url,
            json=rest if method not in ("GET", "DELETE") else None,
            headers=self._headers,
            timeout=self._spec.timeout_seconds,
        )
        return await fetch(client, request, self._spec.max_response_bytes, self._origin)


class AgentTarget:
    """Another Agent's OpenAI endpoint: the arguments become the user message."""

    def __init__(self, spec: AgentCall, max_bytes: int = 1_048_576) -> None:
        self._spec = spec
        self._max_bytes = max_bytes
        self._url = httpx.URL(spec.base_url.rstrip("/") + "/chat/completions")
        self._origin = _origin(self._url)

    async def call(self, client: httpx.AsyncClient, arguments: dict[str, Any]) -> str:
        strings = [v for v in arguments.values() if isinstance(v, str)]
        text = strings[0] if len(arguments) == 1 and strings else json.dumps(arguments)
        request = client.build_request(
            "POST",
            self._url,
            json={"model": self._spec.model, "messages": [{"role": "user", "content": text}]},
            timeout=self._spec.timeout_seconds,
        )
        body = await fetch(client, request, self._max_bytes, self._origin)
        try:
            content = json.loads(body)["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError) as err:
            raise ToolFailed(
                "error", "the agent answered something other than a chat completion"
            ) from err
        return content if isinstance(content, str) else ""


async def fetch(
    client: httpx.AsyncClient, request: httpx.Request, max_bytes: int, origin: tuple[str, ...]
) -> str:
    """Send without following redirects; the body, cut at `max_bytes`. ToolFailed on 3xx/4xx/5xx."""
    if _origin(request.url) != origin:
        raise ToolFailed("refused", "the call would leave the tool's declared host")
    response = await client.send(request, stream=True, follow_redirects=False)
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
    text = body.decode("utf-8", errors="replace")
    if response.status_code >= 400:
        raise ToolFailed("http_error", f"HTTP {response.status_code}: {text[:ERROR_EXCERPT]}")
    return text + (f"\n[response cut at {max_bytes} bytes]" if cut else "")


async def _read_capped(response: httpx.Response, max_bytes: int) -> tuple[bytes, bool]:
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_raw():
        chunks.append(chunk)
        size += len(chunk)
        if size > max_bytes:
            return b"".join(chunks)[:max_bytes], True
    return b"".join(chunks), False


class ToolSet:
    """The configured tools, checked: what the model is offered and how each call is served.
    Built at startup (raises ToolConfigError for a tool that cannot be served); pure."""

    def __init__(self, tools: Sequence[RuntimeTool], env: Mapping[str, str]) -> None:
        self.targets: dict[str, Target] = {}
        self.validators: dict[str, jsonschema.protocols.Validator] = {}
        self.timeouts: dict[str, float] = {}
        self.definitions: list[dict[str, Any]] = []
        for tool in tools:
            cls = jsonschema.validators.validator_for(
                tool.parameters, jsonschema.Draft202012Validator
            )
            self.validators[tool.name] = cls(tool.parameters)
            if tool.http is not None:
                self.targets[tool.name] = HttpTarget(tool.name, tool.http, env)
                self.timeouts[tool.name] = tool.http.timeout_seconds
            elif tool.agent is not None:
                self.targets[tool.name] = AgentTarget(tool.agent)
                self.timeouts[tool.name] = tool.agent.timeout_seconds
            self.definitions.append(
                {
                    "type": "function",
                    "function": {
                        "name": tool.name,
                        "description": tool.description,
                        "parameters": tool.parameters,
                    },
                }
            )


class ToolRunner:
    """Runs the model's tool calls over one long-lived client; one instance per app."""

    def __init__(
        self,
        toolset: ToolSet,
        client: httpx.AsyncClient,
        record: Recorder,
        max_parallel: int = 16,
    ) -> None:
        self._set = toolset
        self._client = client
        self._record = record
        self._max_parallel = max_parallel
        self.definitions = toolset.definitions

    async def run(self, calls: Sequence[base.ToolCall]) -> list[ToolResult]:
        """Run one model turn's calls (in parallel, bounded); results in the calls' order."""
        if len(calls) == 1:
            return [await self.run_one(calls[0])]
        gate = asyncio.Semaphore(self._max_parallel)

        async def bounded(call: base.ToolCall) -> ToolResult:
            async with gate:
                return await self.run_one(call)

        return list(await asyncio.gather(*(bounded(c) for c in calls)))

    async def run_one(self, call: base.ToolCall) -> ToolResult:
        started = time.perf_counter()
        try:
            content = await self._dispatch(call)
            outcome = "ok"
        except ToolFailed as failure:
            content, outcome = f"error: {failure}", failure.outcome
        except (TimeoutError, httpx.TimeoutException):
            limit = self._set.timeouts[call.name]
            content, outcome = f"error: the tool did not answer within {limit:g}s", "timeout"
        except httpx.HTTPError as err:
            content = f"error: the tool could not be reached ({type(err).__name__})"
            outcome = "error"
        self._record(call.name, outcome, time.perf_counter() - started)
        return ToolResult(call.id, call.name, content, outcome)

    async def _dispatch(self, call: base.ToolCall) -> str:
        target = self._set.targets.get(call.name)
        if target is None:
            known = ", ".join(sorted(self._set.targets)) or "none"
            raise ToolFailed("unknown_tool", f"there is no tool {call.name!r} (tools: {known})")
        arguments = parse_arguments(call.arguments)
        validator = self._set.validators[call.name]
        problem = jsonschema.exceptions.best_match(validator.iter_errors(arguments))
        if problem is not None:
            where = "/".join(str(p) for p in problem.absolute_path) or "arguments"
            raise ToolFailed(
                "invalid_arguments", f"invalid arguments at {where}: {problem.message}"
            )
        async with asyncio.timeout(self._set.timeouts[call.name]):
            return await target.call(self._client, arguments)


def parse_arguments(text: str) -> dict[str, Any]:
    """The model's argument JSON as an object ({} for empty text)."""
    if not text.strip():
        return {}
    try:
        value = json.loads(text)
    except ValueError as err:
        raise ToolFailed("invalid_arguments", f"arguments are not valid JSON: {err}") from err
    if not isinstance(value, dict):
        raise ToolFailed("invalid_arguments", "arguments must be a JSON object")
    return value


def _scalar(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value, separators=(",", ":"))


def _origin(url: httpx.URL) -> tuple[str, ...]:
    port = url.port or {"http": 80, "https": 443}.get(url.scheme, 0)
    return (url.scheme, url.host, str(port))
