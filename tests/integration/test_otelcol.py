"""The real OpenTelemetry Collector receives a trace the OpenTelemetry SDK exports over OTLP/HTTP.

The SDK, configured only through OTEL_EXPORTER_OTLP_ENDPOINT as the runtime will be, exports a
root span with two children to the collector of the `otel_collector` fixture (hack/otelcol.py).
The expected ids come from the SDK's own span contexts, so a lost parent link, a split trace, a
dropped attribute or a wrong service.name fails the test.
"""

from __future__ import annotations

import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.util.types import AttributeValue

import otelcol

SERVICE = "corral-otelcol-test"


def test_a_root_and_two_children_arrive_as_one_trace_with_parent_links_and_attributes(
    otel_collector: otelcol.Collector, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", otel_collector.endpoint)
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", raising=False)
    provider = TracerProvider(resource=Resource.create({"service.name": SERVICE}))
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter()))
    tracer = provider.get_tracer(__name__)
    attributes: dict[str, AttributeValue] = {
        "gen_ai.request.model": "gemma-3-270m",
        "gen_ai.usage.input_tokens": 2**40,  # past 32 bits: OTLP JSON carries ints as strings
        "gen_ai.request.temperature": 0.25,
        "corral.stream": True,
        "corral.tools": ["search", "fetch"],
    }
    with tracer.start_as_current_span("agent.run", kind=SpanKind.SERVER) as root:
        with tracer.start_as_current_span("chat gemma", kind=SpanKind.CLIENT) as chat:
            chat.set_attributes(attributes)
        with tracer.start_as_current_span("tool search") as tool:
            tool.set_status(Status(StatusCode.ERROR, "the tool timed out"))
    provider.shutdown()

    spans = otel_collector.spans(until=lambda spans: len(spans) >= 3)

    by_name = {span.name: span for span in spans}
    assert len(spans) == 3
    assert set(by_name) == {"agent.run", "chat gemma", "tool search"}
    trace_id = format(root.get_span_context().trace_id, "032x")
    assert [span.trace_id for span in spans] == [trace_id] * 3
    received_root, received_chat, received_tool = (
        by_name["agent.run"],
        by_name["chat gemma"],
        by_name["tool search"],
    )
    root_id = format(root.get_span_context().span_id, "016x")
    assert received_root.span_id == root_id
    assert received_root.parent_span_id is None
    assert received_chat.span_id == format(chat.get_span_context().span_id, "016x")
    assert received_chat.parent_span_id == root_id
    assert received_tool.span_id == format(tool.get_span_context().span_id, "016x")
    assert received_tool.parent_span_id == root_id

    assert received_chat.attributes == attributes
    assert received_root.attributes == {}
    assert [span.service_name for span in spans] == [SERVICE] * 3
    assert (received_root.kind, received_chat.kind, received_tool.kind) == (
        "SERVER",
        "CLIENT",
        "INTERNAL",
    )
    assert (received_tool.status_code, received_tool.status_message) == (
        "ERROR",
        "the tool timed out",
    )
    assert received_chat.status_code == "UNSET"
    for child in (received_chat, received_tool):
        assert received_root.start_time_unix_nano <= child.start_time_unix_nano
        assert child.start_time_unix_nano <= child.end_time_unix_nano
        assert child.end_time_unix_nano <= received_root.end_time_unix_nano
