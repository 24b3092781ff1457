"""The provider interface: one chat call or stream against one model, in OpenAI shapes.

Implemented by `openai` and `gemini` (one module each) and by the failover chain, which wraps
several providers behind the same interface. The agent loop and the routes only see this
interface. Pure data and protocols; no I/O here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

FinishReason = Literal["stop", "length", "tool_calls", "content_filter"]


@dataclass(frozen=True, slots=True)
class ChatParams:
    """What the agent loop asks of a model. Messages and tools are in OpenAI wire shape."""

    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]] = field(default_factory=list)
    tool_choice: str | dict[str, Any] | None = None
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    stop: list[str] | None = None
    # The span of the request this call belongs to (an OpenTelemetry Context), so the call's
    # own span is its child; None when there is no request span.
    trace_parent: Any = None


def completion_bound(requested: int | None, model_bound: int | None) -> int | None:
    """The max_tokens to send a model: the request's, never above the model's own `maxTokens`
    (an upper bound set on the Agent per model), and the model's bound when the request has none."""
    if requested is None:
        return model_bound
    return requested if model_bound is None else min(requested, model_bound)


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A complete tool call; `arguments` is the JSON text the model produced."""

    id: str
    name: str
    arguments: str


@dataclass(frozen=True, slots=True)
class Completion:
    """A whole (non-streamed) answer."""

    content: str | None
    tool_calls: list[ToolCall]
    finish_reason: FinishReason
    usage: Usage | None
    model: str


@dataclass(frozen=True, slots=True)
class ToolCallDelta:
    """A fragment of a streamed tool call. `index` is stable per call within one answer;
    `id` and `name` arrive on the first fragment of a call, `arguments` may be split."""

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""


@dataclass(frozen=True, slots=True)
class ToolRun:
    """A tool call the agent loop ran on the server, as told to a client that asked for the
    activity (the arguments the model produced and the outcome label, never the result)."""

    id: str
    name: str
    arguments: str
    outcome: str


@dataclass(frozen=True, slots=True)
class Delta:
    """One streamed piece of an answer. The last piece carries `finish_reason`; `usage`
    arrives on the last piece or on a piece of its own after it. `model` names the upstream
    model that produced the answer (set by the failover chain on a stream's first piece and by
    the agent loop on its last); `tool_runs` are the tools one loop turn ran (agent loop only,
    when the request asked for its activity)."""

    content: str | None = None
    tool_calls: list[ToolCallDelta] = field(default_factory=list)
    finish_reason: FinishReason | None = None
    usage: Usage | None = None
    model: str | None = None
    tool_runs: tuple[ToolRun, ...] = ()


class Provider(Protocol):
    """One model endpoint (or a chain of them with the same face)."""

    @property
    def provider(self) -> str:
        """Bounded label for metrics and logs: 'openai', 'gemini' (or 'failover')."""
        ...

    @property
    def model(self) -> str:
        """The upstream model name (the primary's, for a chain)."""
        ...

    async def complete(self, params: ChatParams) -> Completion:
        """One whole answer. Raises ProviderError subclasses."""
        ...

    def stream(self, params: ChatParams) -> AsyncIterator[Delta]:
        """The answer piece by piece. Raises ProviderError subclasses, before or during."""
        ...

    async def aclose(self) -> None:
        """Release long-lived clients."""
        ...


class ProviderError(Exception):
    """An upstream call failed. `retryable` marks timeouts, 5xx, 429 and connection errors:
    the failover chain retries those and moves to the next model; others surface at once."""

    retryable: bool = False

    def __init__(
        self,
        message: str,
        *,
        provider: str,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.provider = provider
        self.status = status
        self.retry_after = retry_after


class ProviderTimeout(ProviderError):
    """The per-attempt timeout passed."""

    retryable = True


class ProviderUnavailable(ProviderError):
    """5xx, 429, a connection error, or a malformed body from upstream."""

    retryable = True


class ProviderRejected(ProviderError):
    """Upstream refused the request itself (4xx other than 429): retrying cannot help.
    The status is kept so the serving layer can answer with a matching 4xx."""


class CircuitOpen(ProviderError):
    """The provider's circuit breaker is open; the chain skips it without calling."""

    retryable = True


class AllProvidersFailed(ProviderError):
    """Every model of the chain failed; `errors` holds the last error of each, in order."""

    retryable = False

    def __init__(self, errors: list[ProviderError]) -> None:
        last = errors[-1] if errors else None
        summary = "; ".join(f"{e.provider}: {e}" for e in errors) or "no models configured"
        super().__init__(
            f"all models failed: {summary}",
            provider="failover",
            status=last.status if last else None,
            retry_after=last.retry_after if last else None,
        )
        self.errors = errors
