"""OpenTelemetry traces of the runtime, named by the GenAI semantic conventions.

One trace per request: an `invoke_agent {agent}` span (SERVER) for the request, a `chat
{model}` span (CLIENT) per model call attempt (`providers.traced`), and an `execute_tool
{tool}` span per tool call (`tools`). W3C trace context comes in with the request
(`extract`) and goes out with every tool call and agent call (`inject`), so A -> B is one
trace. Prompt and answer text are never put in spans; only names, models, token counts,
finish reasons, outcomes and error types.

`Tracing.from_env` reads the standard OTEL_* variables (the operator passes them from the chart
or the Agent): with `OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` set
(and neither `OTEL_SDK_DISABLED=true` nor `OTEL_TRACES_EXPORTER=none`), spans are batched and
exported over OTLP/HTTP to that endpoint (the exporter and the batch processor read the rest,
headers, timeouts, delays, from the process environment as usual); otherwise the tracer is the
API's no-op one and spans cost next to nothing. The provider is this app's own
(not the global one), flushed and shut down with the app. Built by the app factory; export is
network I/O on a background thread.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

Context = otel_context.Context
SCOPE = "corral.runtime"

# GenAI semantic-convention attribute names (https://opentelemetry.io/docs/specs/semconv/gen-ai/).
OPERATION = "gen_ai.operation.name"
PROVIDER = "gen_ai.provider.name"
SYSTEM = "gen_ai.system"  # the older name of gen_ai.provider.name, still read by many backends
AGENT_NAME = "gen_ai.agent.name"
REQUEST_MODEL = "gen_ai.request.model"
RESPONSE_MODEL = "gen_ai.response.model"
REQUEST_MAX_TOKENS = "gen_ai.request.max_tokens"
REQUEST_TEMPERATURE = "gen_ai.request.temperature"
INPUT_TOKENS = "gen_ai.usage.input_tokens"
OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
FINISH_REASONS = "gen_ai.response.finish_reasons"
TOOL_NAME = "gen_ai.tool.name"
TOOL_CALL_ID = "gen_ai.tool.call.id"
TOOL_TYPE = "gen_ai.tool.type"
ERROR_TYPE = "error.type"
# The OpenTelemetry provider names of our providers.
PROVIDER_NAMES = {"openai": "openai", "gemini": "gcp.gemini"}


@dataclass(frozen=True, slots=True)
class Tracing:
    """The app's tracer, and the SDK provider behind it when export is on."""

    tracer: trace.Tracer
    provider: TracerProvider | None = None

    @classmethod
    def off(cls) -> Tracing:
        return cls(trace.NoOpTracer())

    @classmethod
    def from_env(cls, env: Mapping[str, str], agent: str, namespace: str) -> Tracing:
        """Export over OTLP/HTTP when the OTEL_* variables ask for it; otherwise off."""
        if not exporting(env):
            return cls.off()
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        resource = Resource.create(
            {
                "service.name": env.get("OTEL_SERVICE_NAME") or f"corral-agent-{agent}",
                "k8s.namespace.name": namespace,
                AGENT_NAME: agent,
            }
        )
        provider = TracerProvider(resource=resource)
        exporter = OTLPSpanExporter(endpoint=traces_endpoint(env))
        provider.add_span_processor(BatchSpanProcessor(exporter))
        return cls(provider.get_tracer(SCOPE), provider)

    @property
    def exporting(self) -> trace.Tracer | None:
        """The tracer when spans are exported; None when tracing is off, so callers skip
        span work altogether."""
        return self.tracer if self.provider is not None else None

    def shutdown(self) -> None:
        """Flush what is buffered and stop exporting."""
        if self.provider is not None:
            self.provider.shutdown()


def exporting(env: Mapping[str, str]) -> bool:
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    if env.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower() == "none":
        return False
    return bool(
        env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    )


def traces_endpoint(env: Mapping[str, str]) -> str:
    """Where spans go, as the OTLP exporter specification derives it from the variables."""
    signal = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    if signal:
        return signal
    return env.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").rstrip("/") + "/v1/traces"


def extract(headers: Mapping[str, str]) -> Context:
    """The W3C trace context of an incoming request (an empty context without one)."""
    return propagate.extract(headers)


def inject(headers: MutableMapping[str, str], span: trace.Span) -> None:
    """Put `span`'s W3C trace context (`traceparent`, `tracestate`) into outgoing headers."""
    propagate.inject(headers, context=trace.set_span_in_context(span))


def within(span: trace.Span) -> Context:
    """A context whose current span is `span`: the parent to give child spans explicitly (the
    request's work runs across tasks, so the implicit current span is not relied on)."""
    return trace.set_span_in_context(span)


def failed(span: trace.Span, error: BaseException) -> None:
    """Mark `span` as failed with the error's class only (messages may quote input)."""
    span.set_attribute(ERROR_TYPE, type(error).__name__)
    span.set_status(trace.StatusCode.ERROR)
