"""Every Prometheus series the runtime exports, declared once, in a per-app registry.

Labels are bounded by construction: routes come from a fixed set, statuses are HTTP codes,
models and tools come from the config (a name the model invents becomes `unknown`), error
types are class names. No API key, user, session or prompt ever becomes a label. Besides the
`corral_*` series, the OpenTelemetry GenAI client metrics are exported under their
Prometheus names (`gen_ai_client_operation_duration_seconds`, `gen_ai_client_token_usage`)
with the bucket boundaries the semantic conventions recommend. Recorded at the edges (the
middleware, the serving layer, the provider observer, the tool runner); the per-request
recordings keep the labelled children they touch, keyed by the already-bounded label values,
because `labels()` costs more than the increment itself. No I/O.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterable

import prometheus_client
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from corral.runtime.providers import circuit
from corral.runtime.providers.base import Usage

CONTENT_TYPE = CONTENT_TYPE_LATEST
ROUTES = frozenset(
    {"/v1/chat/completions", "/v1/models", "/healthz", "/readyz", "/metrics", "other"}
)
UNKNOWN = "unknown"
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
TOOL_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
# From the OpenTelemetry GenAI semantic conventions (gen_ai.client.* metrics).
GENAI_DURATION_BUCKETS = (
    0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
)  # fmt: skip
GENAI_TOKEN_BUCKETS = (
    1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864,
)  # fmt: skip
CIRCUIT_STATES = {"closed": 0, "half_open": 1, "open": 2}
STORE_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1)

_RequestChildren = tuple[Counter, Histogram]
_UsageChildren = tuple[Counter, Counter, Histogram, Histogram]
_CallChildren = tuple[Counter, Histogram, Counter | None]


class Metrics:
    """The runtime's metrics. `models` and `tools` are the names labels may take."""

    def __init__(self, models: Iterable[str] = (), tools: Iterable[str] = ()) -> None:
        # The `*_created` twin of every counter doubles the exposition for no use here.
        prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]
        self.registry = CollectorRegistry(auto_describe=True)
        self._models = frozenset(models)
        self._tools = frozenset(tools)
        # Labelled children per bounded label tuple (see the module docstring).
        self._request_children: dict[tuple[str, int], _RequestChildren] = {}
        self._usage_children: dict[tuple[str, str], _UsageChildren] = {}
        self._call_children: dict[tuple[str, str, str], _CallChildren] = {}
        self._store_children: dict[str, Histogram] = {}
        r = self.registry
        self.requests = Counter(
            "corral_requests", "HTTP requests by route and status.", ["route", "status"],
            registry=r,
        )  # fmt: skip
        self.request_duration = Histogram(
            "corral_request_duration_seconds",
            "Time from request to the last byte of the answer, by route.",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.time_to_first_token = Histogram(
            "corral_time_to_first_token_seconds",
            "Time from a streamed chat request to its first content chunk.",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.tokens = Counter(
            "corral_tokens", "Tokens used, by direction (prompt, completion).", ["direction"],
            registry=r,
        )  # fmt: skip
        self.inflight = Gauge(
            "corral_inflight_requests", "API requests being served (streams included).",
            registry=r,
        )  # fmt: skip
        self.sessions = Gauge(
            "corral_sessions", "Conversation sessions held in memory.", registry=r
        )
        self.ratelimit_rejections = Counter(
            "corral_ratelimit_rejections", "Requests refused with 429, by limit (requests,"
            " tokens).", ["kind"], registry=r,
        )  # fmt: skip
        self.provider_calls = Counter(
            "corral_provider_calls",
            "Calls to model providers, by outcome (ok, or the error type).",
            ["provider", "model", "outcome"],
            registry=r,
        )
        self.provider_errors = Counter(
            "corral_provider_errors",
            "Failed calls to model providers, by error type.",
            ["provider", "model", "error_type"],
            registry=r,
        )
        self.provider_failovers = Counter(
            "corral_provider_failovers",
            "Requests moved from one model to the next.",
            ["from_model", "to_model"],
            registry=r,
        )
        self.circuit_state = Gauge(
            "corral_circuit_state",
            "Circuit breaker per model: 0 closed, 1 half-open, 2 open.",
            ["provider", "model"],
            registry=r,
        )
        self.tool_calls = Counter(
            "corral_tool_calls", "Tool calls by tool and outcome.", ["tool", "outcome"],
            registry=r,
        )  # fmt: skip
        self.tool_duration = Histogram(
            "corral_tool_duration_seconds", "Tool call duration by tool.", ["tool"],
            buckets=TOOL_BUCKETS, registry=r,
        )  # fmt: skip
        self.store_duration = Histogram(
            "corral_state_store_duration_seconds",
            "Round trips to the shared state store, by operation (admit, with the settles it"
            " carries; settle, the settles no admit carried; history; remember).",
            ["operation"],
            buckets=STORE_BUCKETS,
            registry=r,
        )
        self.store_errors = Counter(
            "corral_state_store_errors", "Failed state store operations, by operation and error"
            " type.", ["operation", "error_type"], registry=r,
        )  # fmt: skip
        self.store_up = Gauge(
            "corral_state_store_up", "1 while the shared state store answers, 0 while it does"
            " not (set when a stateStore is configured).", registry=r,
        )  # fmt: skip
        self.store_fallbacks = Counter(
            "corral_state_store_fallbacks", "Requests served under per-replica limits and no"
            " budget because the state store was unreachable (FailOpen).", registry=r,
        )  # fmt: skip
        self.budget_rejections = Counter(
            "corral_budget_rejections", "Requests refused with 429 because a budget is spent, by"
            " measure (tokens, cost) and window (day, month).", ["kind", "window"], registry=r,
        )  # fmt: skip
        self.spend = Counter(
            "corral_spend_usd", "USD spent on model calls by this replica, from the models'"
            " pricing.", registry=r,
        )  # fmt: skip
        self.mcp_tool_calls = Counter(
            "corral_mcp_tool_calls",
            "MCP tool calls by server, tool and outcome (ok, or why not).",
            ["server", "tool", "outcome"],
            registry=r,
        )
        self.mcp_tool_duration = Histogram(
            "corral_mcp_tool_duration_seconds", "MCP tool call duration by server and tool.",
            ["server", "tool"], buckets=TOOL_BUCKETS, registry=r,
        )  # fmt: skip
        self.mcp_sessions = Counter(
            "corral_mcp_session_initializations",
            "MCP sessions set up, by server and reason (first, session_gone, connection_lost).",
            ["server", "reason"],
            registry=r,
        )
        self.mcp_tools_offered = Gauge(
            "corral_mcp_tools", "Tools of each MCP server offered to the model.", ["server"],
            registry=r,
        )  # fmt: skip
        self.genai_duration = Histogram(
            "gen_ai_client_operation_duration_seconds",
            "GenAI operation duration (OpenTelemetry gen_ai.client.operation.duration).",
            ["gen_ai_operation_name", "gen_ai_provider_name", "gen_ai_request_model", "error_type"],
            buckets=GENAI_DURATION_BUCKETS,
            registry=r,
        )
        self.genai_tokens = Histogram(
            "gen_ai_client_token_usage",
            "Tokens per GenAI operation (OpenTelemetry gen_ai.client.token.usage).",
            ["gen_ai_operation_name", "gen_ai_provider_name", "gen_ai_request_model",
             "gen_ai_token_type"],
            buckets=GENAI_TOKEN_BUCKETS,
            registry=r,
        )  # fmt: skip

    def render(self) -> bytes:
        """The exposition text of every series."""
        return generate_latest(self.registry)

    def track_sessions(self, count: Callable[[], int]) -> None:
        """Report the session count at scrape time."""
        self.sessions.set_function(lambda: float(count()))

    # -- recording (label values bounded here) -------------------------------------------------

    def request(self, route: str, status: int, seconds: float) -> None:
        route = route if route in ROUTES else "other"
        children = self._request_children.get((route, status))
        if children is None:
            children = self._request_children[(route, status)] = (
                self.requests.labels(route, str(status)),
                self.request_duration.labels(route),
            )
        children[0].inc()
        children[1].observe(seconds)

    def usage(self, provider: str, model: str, prompt: int, completion: int) -> None:
        key = (provider, self.model_label(model))
        children = self._usage_children.get(key)
        if children is None:
            children = self._usage_children[key] = (
                self.tokens.labels("prompt"),
                self.tokens.labels("completion"),
                self.genai_tokens.labels("chat", *key, "input"),
                self.genai_tokens.labels("chat", *key, "output"),
            )
        children[0].inc(prompt)
        children[1].inc(completion)
        children[2].observe(prompt)
        children[3].observe(completion)

    def provider_call(self, provider: str, model: str, outcome: str, seconds: float) -> None:
        """One call to one model ended; `outcome` is "ok" or a bounded error label."""
        key = (provider, self.model_label(model), outcome)
        children = self._call_children.get(key)
        if children is None:
            error_type = "" if outcome == "ok" else outcome
            children = self._call_children[key] = (
                self.provider_calls.labels(*key),
                self.genai_duration.labels("chat", *key[:2], error_type),
                self.provider_errors.labels(*key[:2], error_type) if error_type else None,
            )
        children[0].inc()
        children[1].observe(seconds)
        if children[2] is not None:
            children[2].inc()

    def failover(self, from_model: str, to_model: str) -> None:
        self.provider_failovers.labels(
            self.model_label(from_model), self.model_label(to_model)
        ).inc()

    def circuit(self, provider: str, model: str, state: str) -> None:
        value = CIRCUIT_STATES.get(state)
        if value is not None:
            self.circuit_state.labels(provider, self.model_label(model)).set(value)

    def tool_call(self, tool: str, outcome: str, seconds: float) -> None:
        tool = tool if tool in self._tools else UNKNOWN
        self.tool_calls.labels(tool, outcome).inc()
        self.tool_duration.labels(tool).observe(seconds)

    def store_operation(self, operation: str, seconds: float, error: str) -> None:
        """One round trip to the state store ended; `error` is its error type or ""."""
        child = self._store_children.get(operation)
        if child is None:
            child = self._store_children[operation] = self.store_duration.labels(operation)
        child.observe(seconds)
        if error:
            self.store_errors.labels(operation, error).inc()

    def spent(self, nano_usd: int) -> None:
        self.spend.inc(nano_usd / 1_000_000_000)

    def mcp_call(self, server: str, tool: str, outcome: str, seconds: float) -> None:
        """Labels: a configured server, and a tool name that server listed (at most
        `mcptools.MAX_TOOLS_PER_SERVER` of them are offered): bounded."""
        self.mcp_tool_calls.labels(server, tool, outcome).inc()
        self.mcp_tool_duration.labels(server, tool).observe(seconds)

    def mcp_session(self, server: str, reason: str) -> None:
        self.mcp_sessions.labels(server, reason).inc()

    def mcp_tools(self, server: str, count: int) -> None:
        self.mcp_tools_offered.labels(server).set(count)

    def model_label(self, model: str) -> str:
        return model if model in self._models else UNKNOWN


# Which model answered the current request's last model call: set by the observer when a call
# ends well, read when its usage is recorded. The chain runs in the request's own task, so
# the value set there is visible to the agent loop right after the call returns.
answered_by: contextvars.ContextVar[tuple[str, str] | None] = contextvars.ContextVar(
    "corral_answered_by", default=None
)


class ProviderObserver:
    """The failover chain's `Observer`, recording into Metrics."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def on_attempt(self, provider: str, model: str, outcome: str, seconds: float) -> None:
        self._metrics.provider_call(provider, model, outcome, seconds)
        if outcome == "ok":
            answered_by.set((provider, model))

    def on_failover(self, from_model: str, to_model: str, reason: str) -> None:
        self._metrics.failover(from_model, to_model)

    def on_circuit(self, provider: str, model: str, state: circuit.State) -> None:
        self._metrics.circuit(provider, model, state.value)


def usage_recorder(metrics: Metrics, default: tuple[str, str]) -> Callable[[Usage], None]:
    """The agent loop's `on_usage`: tokens by the model that answered (default: the primary)."""

    def record(usage: Usage) -> None:
        provider, model = answered_by.get() or default
        metrics.usage(provider, model, usage.prompt_tokens, usage.completion_tokens)

    return record
