"""What a chat with an Agent shows, as plain data: the events of one answer, the Agent it talks
to, and the messages its failures become. Pure; no I/O.

`chatting` turns the runtime's streamed chunks into these events (`events_of`), the terminal
(`chatterm`) and the web page (`chatroutes`) only render them. The runtime reports its
server-side tool calls and the upstream model that answered in choice-less chunks with a
`corral` object, when asked with the `x-corral-activity` header (see the runtime's protocol);
usage comes from `stream_options.include_usage`.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any, Final, Literal
from urllib.parse import urlsplit

from corral.api import groups

ACTIVITY_HEADER: Final = "x-corral-activity"
SESSION_HEADER: Final = "x-session-id"
PORT_NAME: Final = "http"  # the port name the operator gives the Agent's Service


@dataclasses.dataclass(frozen=True)
class Content:
    """A piece of the answer's text, as it streams."""

    text: str


@dataclasses.dataclass(frozen=True)
class ToolCall:
    """A tool the Agent ran on the server while answering."""

    name: str
    arguments: str
    outcome: str  # "ok", or what went wrong ("error", "timeout", ...)


@dataclasses.dataclass(frozen=True)
class ToolCalls:
    calls: tuple[ToolCall, ...]


@dataclasses.dataclass(frozen=True)
class Answered:
    """Who answered: the upstream model (e.g. a fallback) and the name the chunks carry."""

    model: str | None
    agent: str | None


@dataclasses.dataclass(frozen=True)
class Usage:
    """Tokens of every model call of the request (the tool loop's turns included)."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


Event = Content | ToolCalls | Answered | Usage


def event_dict(event: Event) -> dict[str, Any]:
    """The event as JSON for the web page: `{"type": "content", ...fields}`."""
    kind = {Content: "content", ToolCalls: "tool_calls", Answered: "answered", Usage: "usage"}
    fields = dataclasses.asdict(event, dict_factory=dict)
    if isinstance(event, ToolCalls):
        fields["calls"] = list(fields["calls"])
    return {"type": kind[type(event)], **fields}


def events_of(chunk: Mapping[str, Any]) -> list[Event]:
    """The events in one streamed chunk (a `chat.completion.chunk` as a dict)."""
    found: list[Event] = []
    report = chunk.get("corral")
    if isinstance(report, Mapping):
        calls = report.get("tool_calls")
        if isinstance(calls, list):
            found.append(
                ToolCalls(
                    tuple(
                        ToolCall(
                            str(c.get("name", "")),
                            str(c.get("arguments", "")),
                            str(c.get("outcome", "")),
                        )
                        for c in calls
                        if isinstance(c, Mapping)
                    )
                )
            )
        if isinstance(report.get("model"), str):
            found.append(Answered(report["model"], _str(chunk.get("model"))))
    for choice in chunk.get("choices") or []:
        text = ((choice or {}).get("delta") or {}).get("content")
        if text:
            found.append(Content(str(text)))
    usage = chunk.get("usage")
    if isinstance(usage, Mapping):
        prompt = int(usage.get("prompt_tokens") or 0)
        completion = int(usage.get("completion_tokens") or 0)
        found.append(
            Usage(prompt, completion, int(usage.get("total_tokens") or prompt + completion))
        )
    return found


# -- the Agent and its Service -------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Target:
    """The Agent to chat with and the way to it: its Service's port through the API server."""

    namespace: str
    agent: str
    service: str
    port: str  # the Service port's name (or number), as the proxy path wants it
    ready: bool
    reason: str  # of the Ready condition, with its message
    memory: bool  # the runtime keeps the conversation (spec.memory.enabled): send a session id

    def proxy_path(self) -> str:
        """The OpenAI base path through the API server's service proxy."""
        return f"/api/v1/namespaces/{self.namespace}/services/{self.service}:{self.port}/proxy/v1"


def service_name(agent: Mapping[str, Any]) -> str:
    """The Agent's Service: the host of `status.endpoint` (`http://NAME.NS.svc:8080/v1`), else
    the Agent's own name (the operator names the Service after the Agent)."""
    endpoint = (agent.get("status") or {}).get("endpoint")
    if isinstance(endpoint, str) and endpoint:
        host = urlsplit(endpoint).hostname or ""
        if host:
            return host.split(".")[0]
    return str(agent["metadata"]["name"])


def target_of(agent: Mapping[str, Any], service: Mapping[str, Any]) -> Target:
    """The chat target from the Agent and its Service as read from the API server."""
    meta = agent["metadata"]
    ports = (service.get("spec") or {}).get("ports") or []
    named = [p for p in ports if p.get("name") == PORT_NAME] or ports
    port = str(named[0].get("name") or named[0].get("port")) if named else str(groups.RUNTIME_PORT)
    is_ready, reason = readiness(agent)
    memory = bool(((agent.get("spec") or {}).get("memory") or {}).get("enabled"))
    return Target(
        namespace=str(meta["namespace"]),
        agent=str(meta["name"]),
        service=str(service["metadata"]["name"]),
        port=port,
        ready=is_ready,
        reason=reason,
        memory=memory,
    )


def readiness(agent: Mapping[str, Any]) -> tuple[bool, str]:
    """Whether the Agent is Ready, and its Ready condition's reason and message."""
    ready = next(
        (
            c
            for c in (agent.get("status") or {}).get("conditions") or []
            if c.get("type") == "Ready"
        ),
        None,
    )
    if ready is None:
        return False, "the operator has not reported Ready yet"
    reason = ": ".join(str(p) for p in (ready.get("reason"), ready.get("message")) if p)
    return ready.get("status") == "True", reason


# -- failures --------------------------------------------------------------------------------


Kind = Literal["not_found", "forbidden", "not_ready", "unavailable", "unreachable", "rejected"]


class ChatError(Exception):
    """A chat that cannot go on; `message` says what happened and what to do."""

    def __init__(self, kind: Kind, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.kind: Kind = kind
        self.message = message
        self.status = status


def not_ready(namespace: str, agent: str, reason: str) -> ChatError:
    return ChatError(
        "not_ready",
        f"agent {namespace}/{agent} is not Ready ({reason});"
        f" `kubectl describe agent {agent} -n {namespace}` says why",
    )


def http_error(status: int, body: Any, target: Target) -> ChatError:
    """The error of an answer with HTTP `status`: from the API server's proxy (a `Status`
    object: RBAC, no endpoints) or from the runtime (the OpenAI error envelope)."""
    where = f"agent {target.namespace}/{target.agent}"
    if isinstance(body, Mapping) and body.get("kind") == "Status":
        message = str(body.get("message") or f"HTTP {status}")
        if status == 403:
            return ChatError(
                "forbidden",
                f"the API server refused the chat with {where}: {message} (the chat needs"
                f" 'create' on services/proxy in namespace {target.namespace})",
                status,
            )
        if status == 503:
            return ChatError(
                "unavailable",
                f"{where} has no pod ready to answer ({message}); see `kubectl get pods -n"
                f" {target.namespace}` and the Agent's Ready condition",
                status,
            )
        return ChatError("rejected", f"the API server answered {status}: {message}", status)
    error = body.get("error") if isinstance(body, Mapping) else None
    if isinstance(error, Mapping):
        code = error.get("code")
        detail = f"{error.get('message')}" + (f" ({code})" if code else "")
        if status == 401:
            detail += (
                "; the Agent requires an API key (spec.auth), which the API server's proxy"
                " does not pass on: use `kubectl port-forward` and an OpenAI client instead"
            )
        return ChatError("rejected", f"{where} answered {status}: {detail}", status)
    text = body if isinstance(body, str) else json.dumps(body)
    return ChatError("rejected", f"{where} answered {status}: {text[:300]}", status)


def stream_error(body: Any, target: Target) -> ChatError:
    """An error event in the middle of a stream (the runtime's envelope, or its `error`)."""
    error = body.get("error", body) if isinstance(body, Mapping) else None
    message = error.get("message") if isinstance(error, Mapping) else body
    return ChatError(
        "rejected", f"agent {target.namespace}/{target.agent} stopped answering: {message}"
    )


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None
