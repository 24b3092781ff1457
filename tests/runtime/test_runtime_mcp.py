"""MCP tools end to end: real FastMCP servers as processes on loopback (both transports), our
runtime in front of the scripted fake model, the official `openai` SDK as the client."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from runtime_harness import AGENT, Running, ToolReply, ToolServer, agent_config

from corral.api.runtimeconfig import McpServerConfig
from corral.runtime import mcpsessions, mcptools
from corral.runtime.settings import Settings
from fakes import scripts
from fakes.mcp_server import MCPServerProcess, SilentServers
from fakes.openai_server import FakeOpenAI

USER = [{"role": "user", "content": "Where is order 7?"}]
LOOKUP = mcptools.function_name("orders-mcp", "lookup_order")


def tool_messages(body: dict[str, Any]) -> list[str]:
    return [m["content"] for m in body["messages"] if m["role"] == "tool"]


def offered(body: dict[str, Any]) -> list[str]:
    return sorted(t["function"]["name"] for t in body.get("tools", []))


def server_config(url: str, **fields: Any) -> dict[str, Any]:
    return {"name": "orders-mcp", "url": url, **fields}


@pytest.fixture(params=["streamable-http", "sse"])
def mcp_server(request: pytest.FixtureRequest) -> Iterator[MCPServerProcess]:
    options = ("--transport", "sse") if request.param == "sse" else ()
    with MCPServerProcess(None, *options) as server:
        yield server


def transport_of(server: MCPServerProcess) -> str:
    return "sse" if "sse" in server.options else "streamable-http"


@pytest.fixture
def with_mcp(serve: Callable[..., Running], upstream: FakeOpenAI) -> Callable[..., Running]:
    def start(
        *servers: dict[str, Any], env: dict[str, str] | None = None, **fields: Any
    ) -> Running:
        settings = Settings(mcp_startup_seconds=15)
        config = agent_config(upstream.base_url, mcpServers=list(servers), **fields)
        return serve(config, env=env, settings=settings)

    return start


def test_an_mcp_tool_is_offered_by_the_naming_rule_called_and_its_result_fed_back(
    with_mcp: Callable[..., Running], upstream: FakeOpenAI, mcp_server: MCPServerProcess
) -> None:
    agent = with_mcp(server_config(mcp_server.url, transport=transport_of(mcp_server)))
    upstream.enqueue(
        scripts.tool_calls(scripts.call(LOOKUP, {"order_id": "7"})),
        scripts.text("Order 7 has shipped."),
    )

    answer = agent.client().chat.completions.create(model=AGENT, messages=USER)

    assert answer.choices[0].message.content == "Order 7 has shipped."
    first, second = upstream.requests
    assert LOOKUP == "orders-mcp__lookup_order"
    assert LOOKUP in offered(first.body)
    assert tool_messages(second.body) == ["order 7: shipped"]
    assert (
        agent.sample(
            "corral_mcp_tool_calls_total", server="orders-mcp", tool="lookup_order", outcome="ok"
        )
        == 1
    )
    assert (
        agent.sample(
            "corral_mcp_session_initializations_total", server="orders-mcp", reason="first"
        )
        == 1
    )


def test_the_allow_list_offers_only_the_tools_it_names(
    with_mcp: Callable[..., Running], upstream: FakeOpenAI, mcp_server: MCPServerProcess
) -> None:
    agent = with_mcp(
        server_config(
            mcp_server.url, transport=transport_of(mcp_server), tools=["lookup_order", "absent"]
        )
    )
    upstream.enqueue(scripts.text("Hello."))

    agent.client().chat.completions.create(model=AGENT, messages=USER)

    assert offered(upstream.requests[0].body) == [LOOKUP]


def test_a_header_from_a_secret_reaches_the_server_and_never_the_logs_or_metrics(
    with_mcp: Callable[..., Running],
    upstream: FakeOpenAI,
    caplog: pytest.LogCaptureFixture,
) -> None:
    token = "Bearer mcp-s3cret-value"
    with MCPServerProcess(None, "--require", f"Authorization={token}") as server:
        caplog.set_level(logging.DEBUG)
        agent = with_mcp(
            server_config(server.url, headerEnvs={"Authorization": "MCP_TOKEN"}),
            env={"MCP_TOKEN": token},
        )
        upstream.enqueue(
            scripts.tool_calls(
                scripts.call("orders-mcp__header_digest", {"header": "authorization"})
            ),
            scripts.text("Checked."),
        )

        agent.client().chat.completions.create(model=AGENT, messages=USER)

    # The server answers 401 without the header; the tool reports a digest of what it got.
    (result,) = tool_messages(upstream.requests[1].body)
    assert result == hashlib.sha256(token.encode()).hexdigest()
    assert "mcp-s3cret-value" not in caplog.text
    assert "mcp-s3cret-value" not in agent.metrics()


def test_arguments_that_break_the_input_schema_are_a_tool_error_the_model_reads(
    with_mcp: Callable[..., Running], upstream: FakeOpenAI, mcp_server: MCPServerProcess
) -> None:
    agent = with_mcp(server_config(mcp_server.url, transport=transport_of(mcp_server)))
    upstream.enqueue(
        scripts.tool_calls(scripts.call(LOOKUP, {"order_id": 7})),
        scripts.text("Sorry."),
    )

    answer = agent.client().chat.completions.create(model=AGENT, messages=USER)

    assert answer.choices[0].message.content == "Sorry."
    (result,) = tool_messages(upstream.requests[1].body)
    assert result.startswith("error: invalid arguments at order_id: 7 is not of type 'string'")


def test_an_oversized_result_is_cut_with_a_note_and_an_error_result_is_a_tool_error(
    with_mcp: Callable[..., Running], upstream: FakeOpenAI, mcp_server: MCPServerProcess
) -> None:
    agent = with_mcp(
        server_config(mcp_server.url, transport=transport_of(mcp_server), maxResultBytes=2048)
    )
    upstream.enqueue(
        scripts.tool_calls(
            scripts.call("orders-mcp__big", {"size": 100_000}, id="c1"),
            scripts.call("orders-mcp__fail", {}, id="c2"),
        ),
        scripts.text("Done."),
    )

    agent.client().chat.completions.create(model=AGENT, messages=USER)

    cut, failed = tool_messages(upstream.requests[1].body)
    assert cut == "x" * 2048 + "\n[response cut at 2048 bytes]"
    assert failed.startswith("error: ")
    assert "the warehouse is on fire" in failed


def test_tools_list_changed_refreshes_what_the_model_is_offered(
    with_mcp: Callable[..., Running], upstream: FakeOpenAI
) -> None:
    with MCPServerProcess() as server:
        agent = with_mcp(server_config(server.url))
        upstream.enqueue(
            scripts.tool_calls(scripts.call("orders-mcp__add_tool", {})), scripts.text("Added.")
        )
        agent.client().chat.completions.create(model=AGENT, messages=USER)

        for _ in range(200):  # the notification is handled in the background: poll, bounded
            upstream.enqueue(scripts.text("Hi."))
            agent.client().chat.completions.create(model=AGENT, messages=USER)
            if "orders-mcp__extra_tool" in offered(upstream.requests[-1].body):
                break
            threading.Event().wait(0.05)

    assert "orders-mcp__extra_tool" in offered(upstream.requests[-1].body)
    assert "orders-mcp__extra_tool" not in offered(upstream.requests[0].body)


@pytest.fixture
def silent_server() -> Iterator[str]:
    """An MCP endpoint that accepts connections and never answers: a handshake that hangs."""
    with SilentServers(1) as silent:
        yield silent.urls[0]


def test_a_server_that_never_answers_the_handshake_leaves_the_other_tools_working(
    serve: Callable[..., Running],
    upstream: FakeOpenAI,
    tool_server: ToolServer,
    silent_server: str,
) -> None:
    tool_server.routes["/orders/7"] = ToolReply(body={"status": "shipped"})
    http_tool = {
        "name": "order-lookup",
        "description": "Look up an order",
        "parameters": {"type": "object", "properties": {"order_id": {"type": "string"}}},
        "http": {"url": f"{tool_server.url}/orders/{{order_id}}"},
    }
    config = agent_config(
        upstream.base_url,
        tools=[http_tool],
        mcpServers=[{"name": "silent", "url": silent_server, "timeoutSeconds": 1}],
    )
    agent = serve(config, settings=Settings(mcp_startup_seconds=30))
    upstream.enqueue(
        scripts.tool_calls(
            scripts.call("order-lookup", {"order_id": "7"}, id="c1"),
            scripts.call("silent__lookup_order", {"order_id": "7"}, id="c2"),
        ),
        scripts.text("Order 7 has shipped."),
    )

    answer = agent.client().chat.completions.create(model=AGENT, messages=USER)

    assert answer.choices[0].message.content == "Order 7 has shipped."
    assert offered(upstream.requests[0].body) == ["order-lookup"]
    found, unknown = tool_messages(upstream.requests[1].body)
    assert found == '{"status": "shipped"}'
    assert unknown.startswith("error: there is no tool 'silent__lookup_order'")


def test_a_dead_server_is_a_tool_error_not_a_5xx(
    with_mcp: Callable[..., Running], upstream: FakeOpenAI
) -> None:
    server = MCPServerProcess().start()
    agent = with_mcp(server_config(server.url, timeoutSeconds=1))
    server.stop()
    upstream.enqueue(
        scripts.tool_calls(scripts.call(LOOKUP, {"order_id": "7"})), scripts.text("Sorry.")
    )

    answer = agent.client().chat.completions.create(model=AGENT, messages=USER)

    assert answer.choices[0].message.content == "Sorry."
    (result,) = tool_messages(upstream.requests[1].body)
    assert result == "error: the tool did not answer within 1s"


CALLS_PER_TURN = 5
REQUESTS = 100


def kill_when_held(server: MCPServerProcess, held: Path) -> None:
    """Kill the server once a call is held in it (in flight), then start it again."""
    for _ in range(1200):  # bounded: 60 s
        if held.exists():
            break
        threading.Event().wait(0.05)
    server.kill()
    server.start()


@pytest.mark.parametrize("transport", ["streamable-http", "sse"])
def test_the_server_killed_and_restarted_during_500_calls_costs_no_call(
    with_mcp: Callable[..., Running], upstream: FakeOpenAI, transport: str, tmp_path: Path
) -> None:
    held = tmp_path / "held"
    options = ("--transport", "sse") if transport == "sse" else ()
    server = MCPServerProcess(None, *options, "--hold-file", str(held)).start()
    agent = with_mcp(server_config(server.url, transport=transport))
    for request in range(REQUESTS):
        calls = [
            scripts.call(LOOKUP, {"order_id": f"{request}-{n}", "hold": request == 90}, id=f"c{n}")
            for n in range(CALLS_PER_TURN)
        ]
        upstream.enqueue(scripts.tool_calls(*calls), scripts.text(f"answer {request}"))
    restarts: list[threading.Thread] = []
    client = agent.client()
    try:
        for request in range(REQUESTS):
            if request == 30:  # killed while idle, back a moment later: calls wait for it
                server.kill()
                restarts.append(threading.Thread(target=server.start))
                restarts[-1].start()
            if request == 60:  # killed and back at once: the old session is unknown (404)
                restarts[-1].join()
                server.kill()
                server.start()
            if request == 90:  # killed with a call in flight: a read-only tool is sent again
                restarts.append(threading.Thread(target=kill_when_held, args=(server, held)))
                restarts[-1].start()
            answer = client.chat.completions.create(model=AGENT, messages=USER)
            assert answer.choices[0].message.content == f"answer {request}"
    finally:
        for thread in restarts:
            thread.join()
        server.stop()

    results = [r for req in upstream.requests[1::2] for r in tool_messages(req.body)]
    assert len(results) == REQUESTS * CALLS_PER_TURN
    failed = [r for r in results if not r.endswith(": shipped")]
    assert len(failed) <= len(results) // 1000, failed[:3]
    assert not any("session" in r.lower() for r in results)
    reinitialized = sum(
        agent.sample("corral_mcp_session_initializations_total", server="orders-mcp", reason=r) or 0
        for r in ("session_gone", "connection_lost")
    )
    assert held.exists(), "a call was in flight when the server was killed"
    assert reinitialized >= 3


def test_a_session_the_server_forgot_is_opened_again_and_the_call_sent_once(
    with_mcp: Callable[..., Running], upstream: FakeOpenAI
) -> None:
    """The server answers 404 for a session it dropped while the connection stays up (its
    session table lost, or a replica behind a load balancer that never had it): the call never
    ran there, so even a tool that is not read-only is sent again, once, on a new session."""
    tally = mcptools.function_name("orders-mcp", "tally")
    with MCPServerProcess() as server:
        agent = with_mcp(server_config(server.url))
        upstream.enqueue(
            scripts.tool_calls(scripts.call(tally, {"key": "before"})),
            scripts.text("counted"),
            scripts.tool_calls(scripts.call(tally, {"key": "after"})),
            scripts.text("counted again"),
        )
        client = agent.client()

        first = client.chat.completions.create(model=AGENT, messages=USER)
        forgotten = server.forget_sessions()
        second = client.chat.completions.create(model=AGENT, messages=USER)

    assert forgotten == 1, "the runtime's one session was the one the server forgot"
    assert (first.choices[0].message.content, second.choices[0].message.content) == (
        "counted",
        "counted again",
    )
    results = [r for req in upstream.requests[1::2] for r in tool_messages(req.body)]
    assert results == ["before: 1", "after: 1"], "sent again on the new session, run once"
    initialized = {
        reason: agent.sample(
            "corral_mcp_session_initializations_total", server="orders-mcp", reason=reason
        )
        for reason in ("first", "session_gone", "connection_lost")
    }
    assert initialized == {"first": 1, "session_gone": 1, "connection_lost": None}
    assert (
        agent.sample("corral_mcp_tool_calls_total", server="orders-mcp", tool="tally", outcome="ok")
        == 2
    )


def test_function_names_are_deterministic_valid_and_distinct() -> None:
    long_tool = "t" * 80
    names = {
        mcptools.function_name("orders-mcp", "lookup_order"),
        mcptools.function_name("orders.mcp", "lookup_order"),
        mcptools.function_name("orders-mcp", "lookup.order"),
        mcptools.function_name("orders-mcp", "lookup/order"),
        mcptools.function_name("orders-mcp", long_tool),
        mcptools.function_name("orders-mcp", long_tool + "x"),
    }

    assert len(names) == 6
    assert all(mcptools.FUNCTION_NAME.fullmatch(name) for name in names)
    assert mcptools.function_name("orders.mcp", "lookup_order") == "orders_mcp__lookup_order"
    assert mcptools.function_name("a", long_tool) == mcptools.function_name("a", long_tool)


@pytest.mark.anyio
async def test_a_handshake_the_server_refuses_fails_at_once_instead_of_retrying(
    mcp_server: MCPServerProcess,
) -> None:
    wrong = mcp_server.url.rsplit("/", 1)[0] + "/not-mcp"
    config = McpServerConfig(name="orders-mcp", url=wrong, transport=transport_of(mcp_server))
    session = mcpsessions.Session(config, {})
    try:
        # Retrying (what a server being restarted gets) would run into this deadline instead.
        async with asyncio.timeout(20):
            with pytest.raises(mcpsessions.Unreachable, match="HTTP 404"):
                await session.call_tool("lookup_order", {"order_id": "7"}, retry_harmless=True)
    finally:
        await session.close()
