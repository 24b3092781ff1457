"""A client that sends `x-corral-activity: true` (the console's test chat) sees what the agent
did on the server: the tool calls each turn ran and the upstream model that answered, as
choice-less chunks with a `corral` object. Other clients see an ordinary OpenAI stream."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from runtime_harness import AGENT, Running, ToolReply, ToolServer, agent_config

from fakes import scripts
from fakes.openai_server import FakeOpenAI

USER = [{"role": "user", "content": "Where is order 7?"}]
ACTIVITY = {"x-corral-activity": "true"}


def order_tool(url: str) -> dict[str, Any]:
    return {
        "name": "order_lookup",
        "description": "Look up an order",
        "parameters": {
            "type": "object",
            "properties": {"order_id": {"type": "string"}},
            "required": ["order_id"],
        },
        "http": {"url": f"{url}/orders/{{order_id}}"},
    }


@pytest.fixture
def agent(serve: Callable[..., Running], upstream: FakeOpenAI, tool_server: ToolServer) -> Running:
    tool_server.routes["/orders/7"] = ToolReply(body={"status": "lost"})
    upstream.enqueue(
        scripts.tool_calls(scripts.call("order_lookup", {"order_id": "7"})),
        scripts.text("It is lost, sorry.", usage=(30, 5)),
    )
    return serve(agent_config(upstream.base_url, tools=[order_tool(tool_server.url)]))


def test_the_sdk_reports_tool_calls_and_the_answering_model_when_asked(agent: Running) -> None:
    chunks = list(
        agent.client().chat.completions.create(
            model=AGENT,
            messages=USER,
            stream=True,
            stream_options={"include_usage": True},
            extra_headers=ACTIVITY,
        )
    )

    reports = [
        c.model_extra["corral"] for c in chunks if c.model_extra and "corral" in c.model_extra
    ]
    assert reports == [
        {
            "tool_calls": [
                {
                    "id": reports[0]["tool_calls"][0]["id"],
                    "name": "order_lookup",
                    "arguments": '{"order_id":"7"}',  # as the model wrote them
                    "outcome": "ok",
                }
            ]
        },
        {"model": "model-0"},
    ]
    assert all(not c.choices for c in chunks if c.model_extra and "corral" in c.model_extra)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "It is lost, sorry."
    assert chunks[-1].usage is not None


def test_a_tool_that_fails_is_reported_with_its_outcome(
    serve: Callable[..., Running], upstream: FakeOpenAI, tool_server: ToolServer
) -> None:
    tool_server.routes["/orders/7"] = ToolReply(status=500, body={"error": "down"})
    upstream.enqueue(
        scripts.tool_calls(scripts.call("order_lookup", {"order_id": "7"})),
        scripts.text("The order service is down."),
    )
    running = serve(agent_config(upstream.base_url, tools=[order_tool(tool_server.url)]))

    chunks = list(
        running.client().chat.completions.create(
            model=AGENT, messages=USER, stream=True, extra_headers=ACTIVITY
        )
    )

    (calls,) = [c.model_extra["corral"]["tool_calls"] for c in chunks if _reports(c, "tool_calls")]
    assert [(call["name"], call["outcome"] != "ok") for call in calls] == [("order_lookup", True)]


def test_the_model_reported_is_the_fallback_that_answered(
    serve: Callable[..., Running], upstream: FakeOpenAI
) -> None:
    upstream.default = scripts.error(503)
    with FakeOpenAI(scripts.text("from the fallback")) as fallback:
        running = serve(agent_config(upstream.base_url, fallback.base_url))
        chunks = list(
            running.client().chat.completions.create(
                model=AGENT, messages=USER, stream=True, extra_headers=ACTIVITY
            )
        )
    (report,) = [c.model_extra["corral"] for c in chunks if _reports(c, "model")]
    assert report == {"model": "model-1"}
    assert {c.model for c in chunks} == {AGENT}  # the chunks still name the agent


def test_without_the_header_the_stream_carries_no_activity(agent: Running) -> None:
    with httpx.stream(
        "POST",
        f"{agent.base_url}/chat/completions",
        json={"model": AGENT, "messages": USER, "stream": True},
        timeout=30,
    ) as response:
        body = response.read().decode()
    assert '"finish_reason":"stop"' in body  # a whole answer, after the tool turn
    assert '"corral"' not in body
    assert "order_lookup" not in body


def _reports(chunk: Any, key: str) -> bool:
    extra = chunk.model_extra or {}
    return key in extra.get("corral", {})
