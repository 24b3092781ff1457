"""/metrics after real traffic shows every series the runtime promises, with bounded labels."""

from __future__ import annotations

import time
from collections.abc import Callable

import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families
from runtime_harness import AGENT, Running, ToolReply, ToolServer, agent_config

from fakes import scripts
from fakes.openai_server import FakeOpenAI

USER = [{"role": "user", "content": "hello"}]
SERIES = {
    "corral_requests_total",
    "corral_request_duration_seconds_bucket",
    "corral_time_to_first_token_seconds_bucket",
    "corral_tokens_total",
    "corral_provider_calls_total",
    "corral_provider_errors_total",
    "corral_provider_failovers_total",
    "corral_circuit_state",
    "corral_ratelimit_rejections_total",
    "corral_tool_calls_total",
    "corral_tool_duration_seconds_bucket",
    "corral_inflight_requests",
    "corral_sessions",
    "gen_ai_client_operation_duration_seconds_bucket",
    "gen_ai_client_token_usage_bucket",
}


@pytest.fixture
def busy(serve: Callable[..., Running], upstream: FakeOpenAI, tool_server: ToolServer) -> Running:
    """An agent after a mix of traffic: tools, a stream, a failover, a 429 and a 404."""
    tool_server.routes["/ping"] = ToolReply(body={"pong": True})
    tool = {
        "name": "ping",
        "description": "ping",
        "parameters": {"type": "object"},
        "http": {"url": f"{tool_server.url}/ping"},
    }
    with FakeOpenAI(scripts.text("fallback answer")) as fallback:
        config = agent_config(
            upstream.base_url,
            fallback.base_url,
            tools=[tool],
            rateLimit={"requestsPerMinute": 3},
            memory={"enabled": True},
        )
        agent = serve(config, clock=lambda: 1000.0)  # frozen: no refill during the test
        client = agent.client()
        upstream.enqueue(scripts.tool_calls(scripts.call("ping")), scripts.text("pong"))
        client.chat.completions.create(
            model=AGENT, messages=USER, extra_headers={"x-session-id": "s1"}
        )
        list(client.chat.completions.create(model=AGENT, messages=USER, stream=True))
        upstream.enqueue(scripts.error(500), scripts.error(500))
        client.chat.completions.create(model=AGENT, messages=USER)
        with pytest.raises(openai.NotFoundError):
            client.chat.completions.create(model="other", messages=USER)
        with pytest.raises(openai.RateLimitError):
            client.chat.completions.create(model=AGENT, messages=USER)
    return agent


def test_metrics_show_every_promised_series_after_traffic(busy: Running) -> None:
    exposition = busy.metrics()
    names = {s.name for f in text_string_to_metric_families(exposition) for s in f.samples}

    assert names >= SERIES, f"missing: {sorted(SERIES - names)}"


def test_metrics_count_what_happened(busy: Running) -> None:
    # A request is counted after its last byte went out: let the last one finish (bounded).
    deadline = time.monotonic() + 5
    while busy.sample("corral_inflight_requests") != 0:
        assert time.monotonic() < deadline, "a request stayed in flight"
        time.sleep(0.01)
    assert busy.sample("corral_requests_total", route="/v1/chat/completions", status="200") == 3
    assert busy.sample("corral_requests_total", route="/v1/chat/completions", status="404") == 1
    assert busy.sample("corral_ratelimit_rejections_total", kind="requests") == 1
    assert busy.sample("corral_tool_calls_total", tool="ping", outcome="ok") == 1
    assert busy.sample("corral_provider_failovers_total", from_model="model-0") == 1
    assert busy.sample("corral_sessions") == 1
    assert (
        busy.sample(
            "gen_ai_client_token_usage_count",
            gen_ai_operation_name="chat",
            gen_ai_provider_name="openai",
            gen_ai_request_model="model-1",
            gen_ai_token_type="input",
        )
        == 1
    )


def test_metric_labels_never_carry_keys_sessions_or_prompts(busy: Running) -> None:
    exposition = busy.metrics()
    labels = {
        value
        for family in text_string_to_metric_families(exposition)
        for found in family.samples
        for value in found.labels.values()
    }

    assert not {"s1", "hello", "other"} & labels
