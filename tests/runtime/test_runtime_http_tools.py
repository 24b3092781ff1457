"""Tool calls run on the server against real HTTP endpoints on loopback, and feed the model."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import openai
import pytest
from runtime_harness import AGENT, Running, ToolReply, ToolServer, agent_config

from fakes import scripts
from fakes.openai_server import FakeOpenAI

USER = [{"role": "user", "content": "Where is order 7?"}]
ORDER_SCHEMA = {
    "type": "object",
    "properties": {"order_id": {"type": "string"}, "verbose": {"type": "boolean"}},
    "required": ["order_id"],
    "additionalProperties": False,
}


def http_tool(name: str, url: str, **http: Any) -> dict[str, Any]:
    return {
        "name": name,
        "description": f"{name} tool",
        "parameters": http.pop("parameters", ORDER_SCHEMA),
        "http": {"url": url, **http},
    }


def tool_messages(request_body: dict[str, Any]) -> list[dict[str, Any]]:
    return [m for m in request_body["messages"] if m["role"] == "tool"]


@pytest.fixture
def with_tools(
    serve: Callable[..., Running], upstream: FakeOpenAI, tool_server: ToolServer
) -> Callable[..., Running]:
    def start(*tools: dict[str, Any], env: dict[str, str] | None = None, **fields: Any) -> Running:
        return serve(agent_config(upstream.base_url, tools=list(tools), **fields), env=env)

    return start


def test_a_tool_call_runs_over_http_and_its_result_reaches_the_model(
    with_tools: Callable[..., Running], upstream: FakeOpenAI, tool_server: ToolServer
) -> None:
    tool_server.routes["/orders/7"] = ToolReply(body={"status": "shipped"})
    agent = with_tools(
        http_tool(
            "order_lookup",
            f"{tool_server.url}/orders/{{order_id}}",
            headers={"x-static": "yes"},
            headerEnvs={"authorization": "ORDERS_TOKEN"},
        ),
        env={"ORDERS_TOKEN": "Bearer s3cret"},
    )
    upstream.enqueue(
        scripts.tool_calls(scripts.call("order_lookup", {"order_id": "7", "verbose": True})),
        scripts.text("Order 7 has shipped."),
    )

    answer = agent.client().chat.completions.create(model=AGENT, messages=USER)

    assert answer.choices[0].message.content == "Order 7 has shipped."
    assert answer.choices[0].message.tool_calls is None
    (call,) = tool_server.requests
    assert (call.method, call.path, call.query) == ("GET", "/orders/7", "verbose=true")
    assert call.headers["x-static"] == "yes"
    assert call.headers["authorization"] == "Bearer s3cret"
    first, second = upstream.requests
    assert first.body["tools"][0]["function"]["name"] == "order_lookup"
    (result,) = tool_messages(second.body)
    assert result["content"] == '{"status": "shipped"}'
    assert result["tool_call_id"] == second.body["messages"][-2]["tool_calls"][0]["id"]


def test_parallel_tool_calls_all_run_and_come_back_in_order(
    with_tools: Callable[..., Running], upstream: FakeOpenAI, tool_server: ToolServer
) -> None:
    for order in ("1", "2", "3"):
        tool_server.routes[f"/orders/{order}"] = ToolReply(body={"id": order}, delay=0.1)
    agent = with_tools(http_tool("order_lookup", f"{tool_server.url}/orders/{{order_id}}"))
    upstream.enqueue(
        scripts.tool_calls(
            *(scripts.call("order_lookup", {"order_id": o}, id=f"c{o}") for o in "123")
        ),
        scripts.text("All three found."),
    )

    answer = agent.client().chat.completions.create(model=AGENT, messages=USER)

    assert answer.choices[0].message.content == "All three found."
    assert sorted(r.path for r in tool_server.requests) == ["/orders/1", "/orders/2", "/orders/3"]
    results = tool_messages(upstream.requests[1].body)
    assert [(r["tool_call_id"], r["content"]) for r in results] == [
        ("c1", '{"id": "1"}'),
        ("c2", '{"id": "2"}'),
        ("c3", '{"id": "3"}'),
    ]


def test_a_post_tool_sends_the_arguments_not_in_the_url_as_json(
    with_tools: Callable[..., Running], upstream: FakeOpenAI, tool_server: ToolServer
) -> None:
    tool_server.routes["/orders/9/notes"] = ToolReply(status=201, body={"ok": True})
    schema = {
        "type": "object",
        "properties": {"order_id": {"type": "string"}, "note": {"type": "string"}},
        "required": ["order_id", "note"],
    }
    agent = with_tools(
        http_tool(
            "add_note",
            f"{tool_server.url}/orders/{{order_id}}/notes",
            method="POST",
            parameters=schema,
        )
    )
    upstream.enqueue(
        scripts.tool_calls(scripts.call("add_note", {"order_id": "9", "note": "fragile"})),
        scripts.text("Noted."),
    )

    agent.client().chat.completions.create(model=AGENT, messages=USER)

    (call,) = tool_server.requests
    assert (call.method, call.body) == ("POST", {"note": "fragile"})


def test_a_tool_whose_target_redirects_elsewhere_is_refused(
    with_tools: Callable[..., Running], upstream: FakeOpenAI, tool_server: ToolServer
) -> None:
    with ToolServer() as elsewhere:
        elsewhere.routes["/steal"] = ToolReply(body={"secret": "data"})
        tool_server.routes["/orders/7"] = ToolReply(
            status=302, headers=(("location", f"{elsewhere.url}/steal"),)
        )
        agent = with_tools(http_tool("order_lookup", f"{tool_server.url}/orders/{{order_id}}"))
        upstream.enqueue(
            scripts.tool_calls(scripts.call("order_lookup", {"order_id": "7"})),
            scripts.text("I could not look that up."),
        )

        answer = agent.client().chat.completions.create(model=AGENT, messages=USER)

        assert answer.choices[0].message.content == "I could not look that up."
        assert elsewhere.requests == []
    (result,) = tool_messages(upstream.requests[1].body)
    assert result["content"].startswith("error: ")
    assert "redirect" in result["content"]
    calls = agent.sample("corral_tool_calls_total", tool="order_lookup", outcome="redirect_refused")
    assert calls == 1


def test_arguments_that_break_the_schema_never_reach_the_endpoint(
    with_tools: Callable[..., Running], upstream: FakeOpenAI, tool_server: ToolServer
) -> None:
    agent = with_tools(http_tool("order_lookup", f"{tool_server.url}/orders/{{order_id}}"))
    upstream.enqueue(
        scripts.tool_calls(scripts.call("order_lookup", {"order_id": 7, "admin": True})),
        scripts.text("Sorry."),
    )

    agent.client().chat.completions.create(model=AGENT, messages=USER)

    assert tool_server.requests == []
    (result,) = tool_messages(upstream.requests[1].body)
    assert result["content"].startswith("error: invalid arguments")


def test_a_slow_tool_times_out_and_the_model_is_told(
    with_tools: Callable[..., Running], upstream: FakeOpenAI, tool_server: ToolServer
) -> None:
    tool_server.routes["/orders/7"] = ToolReply(body={}, delay=5)
    agent = with_tools(
        http_tool("order_lookup", f"{tool_server.url}/orders/{{order_id}}", timeoutSeconds=0.3)
    )
    upstream.enqueue(
        scripts.tool_calls(scripts.call("order_lookup", {"order_id": "7"})),
        scripts.text("The order system is slow."),
    )

    answer = agent.client().chat.completions.create(model=AGENT, messages=USER)

    assert answer.choices[0].message.content == "The order system is slow."
    (result,) = tool_messages(upstream.requests[1].body)
    assert result["content"] == "error: the tool did not answer within 0.3s"


def test_a_large_tool_response_is_cut_at_the_cap(
    with_tools: Callable[..., Running], upstream: FakeOpenAI, tool_server: ToolServer
) -> None:
    tool_server.routes["/orders/7"] = ToolReply(body=b"x" * 50_000)
    agent = with_tools(
        http_tool("order_lookup", f"{tool_server.url}/orders/{{order_id}}", maxResponseBytes=1024)
    )
    upstream.enqueue(
        scripts.tool_calls(scripts.call("order_lookup", {"order_id": "7"})), scripts.text("ok")
    )

    agent.client().chat.completions.create(model=AGENT, messages=USER)

    (result,) = tool_messages(upstream.requests[1].body)
    assert result["content"] == "x" * 1024 + "\n[response cut at 1024 bytes]"


def test_a_model_that_never_stops_calling_tools_gets_a_clear_error(
    with_tools: Callable[..., Running], upstream: FakeOpenAI, tool_server: ToolServer
) -> None:
    tool_server.routes["/orders/7"] = ToolReply(body={})
    agent = with_tools(
        http_tool("order_lookup", f"{tool_server.url}/orders/{{order_id}}"), maxToolIterations=3
    )
    upstream.default = scripts.tool_calls(scripts.call("order_lookup", {"order_id": "7"}))

    with pytest.raises(openai.InternalServerError) as caught:
        agent.client().chat.completions.create(model=AGENT, messages=USER)

    assert caught.value.code == "tool_iterations_exceeded"
    assert "3 turns" in caught.value.message
    assert len(upstream.requests) == 3
    assert len(tool_server.requests) == 2


def test_a_streamed_answer_after_tool_calls_shows_no_tool_call_deltas(
    with_tools: Callable[..., Running], upstream: FakeOpenAI, tool_server: ToolServer
) -> None:
    tool_server.routes["/orders/7"] = ToolReply(body={"status": "lost"})
    agent = with_tools(http_tool("order_lookup", f"{tool_server.url}/orders/{{order_id}}"))
    upstream.enqueue(
        scripts.tool_calls(scripts.call("order_lookup", {"order_id": "7"})),
        scripts.text("It is lost, sorry.", usage=(30, 5)),
    )

    chunks = list(
        agent.client().chat.completions.create(
            model=AGENT, messages=USER, stream=True, stream_options={"include_usage": True}
        )
    )

    deltas = [c.choices[0].delta for c in chunks if c.choices]
    assert "".join(d.content or "" for d in deltas) == "It is lost, sorry."
    assert all(d.tool_calls is None for d in deltas)
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens >= 5
    assert len(tool_server.requests) == 1


def test_an_agent_tool_asks_another_agent(
    serve: Callable[..., Running], upstream: FakeOpenAI
) -> None:
    with FakeOpenAI(scripts.text("Billing says: refund issued.")) as billing_model:
        billing = serve(agent_config(billing_model.base_url, agent="billing"))
        tool = {
            "name": "ask_billing",
            "description": "Ask the billing agent",
            "parameters": {
                "type": "object",
                "properties": {"question": {"type": "string"}},
                "required": ["question"],
            },
            "agent": {"baseURL": billing.base_url, "model": "billing"},
        }
        front = serve(agent_config(upstream.base_url, tools=[tool]))
        upstream.enqueue(
            scripts.tool_calls(scripts.call("ask_billing", {"question": "Refund order 7?"})),
            scripts.text("Your refund was issued."),
        )

        answer = front.client().chat.completions.create(model=AGENT, messages=USER)

        assert answer.choices[0].message.content == "Your refund was issued."
        asked = billing_model.requests[-1].body["messages"]
        assert asked[-1] == {"role": "user", "content": "Refund order 7?"}
    (result,) = tool_messages(upstream.requests[1].body)
    assert result["content"] == "Billing says: refund issued."
