"""The configured tools: HTTP endpoints and other Agents, both reached over HTTP.

`ToolSet` checks the config's tools at startup and is the `tools.Catalog` the runner serves
them from, over its one long-lived httpx2 client (the openai SDK's client library, on
aiohttp) created by the app's lifespan. Each call runs with the tool's response size cap
(counted on the decoded body, so a compressed answer can neither reach the model compressed
nor expand past the cap). A tool can only reach what its config declares: URL placeholders
are filled with percent-encoded values (a value cannot add a path segment, a query or a
host), the final URL must keep the declared scheme, host and port, and redirects are never
followed (a 3xx answer is refused as a tool error). An agent tool carries the call chain
(`callchain`) and refuses a cycle or a chain deeper than `maxCallDepth`. Error text from a
tool endpoint is bounded and redacted before the model reads it, and the call's W3C trace
context goes out with the request. Built by the app; does network I/O.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from collections.abc import Mapping, Sequence
from typing import Any

import httpx2

from corral.api.runtimeconfig import AgentCall, HttpCall, RuntimeTool
from corral.runtime import callchain, tools, tracing

PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
MAX_URL_LENGTH = 8192


class ToolSet:
    """The configured tools, checked: what the model is offered and how each call is served.
    Built at startup (raises ToolConfigError for a tool that cannot be served); pure."""

    def __init__(
        self, configured: Sequence[RuntimeTool], env: Mapping[str, str], namespace: str = "default"
    ) -> None:
        self.entries: dict[str, tools.Entry] = {}
        self.definitions: list[dict[str, Any]] = []
        for tool in configured:
            validator = tools.validator_for(tool.parameters)
            if tool.http is not None:
                target: tools.Target = HttpTarget(tool.name, tool.http, env)
                entry = tools.Entry(target, validator, tool.http.timeout_seconds, "http")
            else:
                assert tool.agent is not None  # the config model requires one of the two
                target = AgentTarget(tool.agent, namespace)
                entry = tools.Entry(target, validator, tool.agent.timeout_seconds, "agent")
            self.entries[tool.name] = entry
            self.definitions.append(tools.definition(tool.name, tool.description, tool.parameters))

    def entry(self, name: str) -> tools.Entry | None:
        return self.entries.get(name)


class HttpTarget:
    """An HTTP endpoint with a URL template."""

    def __init__(self, name: str, spec: HttpCall, env: Mapping[str, str]) -> None:
        template = urllib.parse.urlsplit(spec.url)
        if PLACEHOLDER.search(f"{template.scheme}://{template.netloc}"):
            raise tools.ToolConfigError(
                f"tool {name!r}: placeholders may not appear in the URL's host"
            )
        self._name = name
        self._spec = spec
        self._origin = _origin(httpx2.URL(PLACEHOLDER.sub("x", spec.url)))
        self._placeholders = frozenset(PLACEHOLDER.findall(spec.url))
        self._headers = dict(spec.headers)
        for header, var in spec.header_envs.items():
            if var not in env:
                raise tools.ToolConfigError(f"tool {name!r}: header {header} needs ${var}, not set")
            self._headers[header] = env[var]

    def url_for(self, arguments: Mapping[str, Any]) -> httpx2.URL:
        """The templated URL; ToolFailed when a value is missing or would leave the origin."""

        def fill(match: re.Match[str]) -> str:
            key = match.group(1)
            if key not in arguments:
                raise tools.ToolFailed("invalid_arguments", f"missing argument {key!r} for the URL")
            text = _scalar(arguments[key])
            if text in ("", ".", ".."):
                raise tools.ToolFailed(
                    "invalid_arguments", f"argument {key!r} is empty or a dot path"
                )
            return urllib.parse.quote(text, safe="")

        url = _url(PLACEHOLDER.sub(fill, self._spec.url))
        if _origin(url) != self._origin:
            raise tools.ToolFailed("refused", "the arguments would send the call to another host")
        return url

    async def call(self, call: tools.Call, arguments: dict[str, Any]) -> str:
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

    async def call(self, call: tools.Call, arguments: dict[str, Any]) -> str:
        try:
            call.chain.check_call(self._identity)
        except callchain.Refused as refused:
            raise tools.ToolFailed("refused", str(refused)) from None
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
            raise tools.ToolFailed(
                "error", "the agent answered something other than a chat completion"
            ) from err
        return content if isinstance(content, str) else ""


async def fetch(
    call: tools.Call, request: httpx2.Request, max_bytes: int, origin: tuple[str, ...]
) -> str:
    """Send without following redirects; the decoded body, cut at `max_bytes`. ToolFailed on
    3xx/4xx/5xx, with the endpoint's error text bounded and redacted."""
    if _origin(request.url) != origin:
        raise tools.ToolFailed("refused", "the call would leave the tool's declared host")
    tracing.inject(request.headers, call.span)
    response = await call.client.send(request, stream=True, follow_redirects=False)
    try:
        if response.is_redirect or 300 <= response.status_code < 400:
            raise tools.ToolFailed(
                "redirect_refused",
                f"the tool endpoint answered {response.status_code} (a redirect);"
                " redirects are not followed",
            )
        body, cut = await _read_capped(response, max_bytes)
    finally:
        await response.aclose()
    if response.status_code >= 400:
        excerpt = call.redact.excerpt(body.decode("utf-8", errors="replace"), tools.ERROR_EXCERPT)
        raise tools.ToolFailed("http_error", f"HTTP {response.status_code}: {excerpt}")
    return tools.capped(body, max_bytes, cut)


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
        raise tools.ToolFailed(
            "invalid_arguments",
            f"the arguments make the URL longer than {MAX_URL_LENGTH} characters",
        )


def _url(text: str) -> httpx2.URL:
    _check_length(text)
    try:
        return httpx2.URL(text)
    except httpx2.InvalidURL as err:
        raise tools.ToolFailed(
            "invalid_arguments", f"the arguments make an invalid URL: {err}"
        ) from None


def _origin(url: httpx2.URL) -> tuple[str, ...]:
    port = url.port or {"http": 80, "https": 443}.get(url.scheme, 0)
    return (url.scheme, url.host, str(port))
