"""Traces against a real OpenTelemetry Collector: one chat with an HTTP tool call and an agent
call is one trace with the right tree, named by the GenAI conventions, with no prompt text.

Two runtimes on loopback (support, and billing behind support's agent tool), each over its own
scripted model, export over OTLP/HTTP to the collector built from Go modules (hack/otelcol.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from runtime_harness import AGENT, Running, ToolReply, ToolServer, agent_config

from corral.runtime.settings import Settings
from fakes import scripts
from fakes.mcp_server import MCPServerProcess
from fakes.openai_server import FakeOpenAI
from otelcol import Collector, Span

QUESTION = "Where is order 7 and was it refunded?"
SECRET_WORD = "refunded"


@pytest.fixture
def otel_env(otel_collector: Collector, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    # The batch processor reads its delay from the process environment: export at once.
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "50")
    return {"OTEL_EXPORTER_OTLP_ENDPOINT": otel_collector.endpoint}


def one(spans: list[Span], name: str) -> Span:
    found = [s for s in spans if s.name == name]
    assert len(found) == 1, f"{len(found)} spans named {name!r} in {[s.name for s in spans]}"
    return found[0]


def test_a_chat_with_a_tool_and_an_agent_call_is_one_trace(
    serve: Callable[..., Running],
    upstream: FakeOpenAI,
    tool_server: ToolServer,
    otel_collector: Collector,
    otel_env: dict[str, str],
) -> None:
    tool_server.routes["/orders/7"] = ToolReply(body={"status": "shipped"})
    with FakeOpenAI(scripts.text("Refund issued.", usage=(12, 3))) as billing_model:
        billing = serve(agent_config(billing_model.base_url, agent="billing"), env=otel_env)
        tools: list[dict[str, Any]] = [
            {
                "name": "order_lookup",
                "description": "Look an order up",
                "parameters": {"type": "object", "properties": {"id": {"type": "string"}}},
                "http": {"url": f"{tool_server.url}/orders/{{id}}"},
            },
            {
                "name": "ask_billing",
                "description": "Ask billing",
                "parameters": {"type": "object", "properties": {"q": {"type": "string"}}},
                "agent": {"baseURL": billing.base_url, "model": "billing"},
            },
        ]
        front = serve(agent_config(upstream.base_url, tools=tools), env=otel_env)
        upstream.enqueue(
            scripts.tool_calls(
                scripts.call("order_lookup", {"id": "7"}),
                scripts.call("ask_billing", {"q": f"Was order 7 {SECRET_WORD}?"}),
                usage=(40, 9),
            ),
            scripts.text("Shipped, and refunded.", usage=(60, 5)),
        )

        front.client().chat.completions.create(
            model=AGENT, messages=[{"role": "user", "content": QUESTION}]
        )

    spans = otel_collector.spans(until=lambda got: len(got) >= 7, timeout=20)

    assert len({s.trace_id for s in spans}) == 1, "one trace"
    request = one(spans, f"invoke_agent {AGENT}")
    assert request.parent_span_id is None
    assert request.kind == "SERVER"
    assert request.service_name == f"corral-agent-{AGENT}"
    assert request.attributes["gen_ai.operation.name"] == "invoke_agent"
    assert request.attributes["gen_ai.usage.input_tokens"] == 100
    assert request.attributes["gen_ai.usage.output_tokens"] == 14
    calls = [
        s for s in spans if s.name == "chat model-0" and s.service_name != "corral-agent-billing"
    ]
    assert [c.parent_span_id for c in calls] == [request.span_id] * 2
    assert {c.kind for c in calls} == {"CLIENT"}
    assert calls[0].attributes["gen_ai.provider.name"] == "openai"
    assert calls[0].attributes["gen_ai.request.model"] == "model-0"
    assert sorted(c.attributes["gen_ai.response.finish_reasons"][0] for c in calls) == [
        "stop",
        "tool_calls",
    ]
    lookup = one(spans, "execute_tool order_lookup")
    ask = one(spans, "execute_tool ask_billing")
    assert (lookup.parent_span_id, ask.parent_span_id) == (request.span_id, request.span_id)
    assert lookup.attributes["gen_ai.tool.name"] == "order_lookup"
    assert (lookup.attributes["corral.tool.kind"], ask.attributes["corral.tool.kind"]) == (
        "http",
        "agent",
    )
    called = one(spans, "invoke_agent billing")
    assert called.parent_span_id == ask.span_id, "the called agent continues the caller's trace"
    assert called.service_name == "corral-agent-billing"
    billing_call = [
        s for s in spans if s.service_name == "corral-agent-billing" and s.kind == "CLIENT"
    ]
    assert [s.parent_span_id for s in billing_call] == [called.span_id]
    (tool_request,) = tool_server.requests
    assert tool_request.headers["traceparent"].split("-")[2] == lookup.span_id
    everything = repr([s.attributes for s in spans])
    assert QUESTION not in everything
    assert SECRET_WORD not in everything, "no prompt or tool-argument text in spans"


def test_an_mcp_tool_call_carries_its_span_to_the_server_in_meta(
    serve: Callable[..., Running],
    upstream: FakeOpenAI,
    otel_collector: Collector,
    otel_env: dict[str, str],
) -> None:
    with MCPServerProcess() as server:
        servers = [{"name": "orders-mcp", "url": server.url}]
        agent = serve(
            agent_config(upstream.base_url, mcpServers=servers),
            env=otel_env,
            settings=Settings(mcp_startup_seconds=15),
        )
        upstream.enqueue(
            scripts.tool_calls(scripts.call("orders-mcp__trace_parent", {})),
            scripts.text("Traced."),
        )
        agent.client().chat.completions.create(
            model=AGENT, messages=[{"role": "user", "content": QUESTION}]
        )

    spans = otel_collector.spans(until=lambda got: len(got) >= 4, timeout=20)
    tool = one(spans, "execute_tool orders-mcp__trace_parent")
    assert tool.attributes["corral.tool.kind"] == "mcp"
    (received,) = [
        m["content"] for m in upstream.requests[1].body["messages"] if m["role"] == "tool"
    ]
    assert received.split("-")[1:3] == [tool.trace_id, tool.span_id]
