"""MCPServers end to end: the shared operator discovers real FastMCP servers (processes on
loopback) into status, reports the ways discovery fails, keeps Agents' references, allow-lists
and config hashes right, and never lets silent servers delay the others."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from operator_e2e import Cluster, OperatorProcess, config_hash, wait_for
from operator_manifests import agent, mcp_server, secret

from fakes.mcp_server import MCPServerProcess, SilentServers

pytestmark = pytest.mark.cluster
WAIT = 60
TOKEN = "Bearer mcp-e2e-token"
OFFERED = "MCPToolsOffered"


def condition(obj: dict[str, Any] | None, type_: str = "Ready") -> tuple[str, str] | None:
    for found in ((obj or {}).get("status") or {}).get("conditions") or []:
        if found["type"] == type_:
            return found["status"], found["reason"]
    return None


def server_of(kube: Cluster, namespace: str, name: str) -> dict[str, Any] | None:
    return kube.get("corral.dev/v1alpha1", "MCPServer", namespace, name)


def wait_condition(
    kube: Cluster,
    op: OperatorProcess,
    ns: str,
    kind: str,
    name: str,
    want: tuple[str, str],
    type_: str = "Ready",
) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        obj = kube.get("corral.dev/v1alpha1", kind, ns, name)
        return obj if condition(obj, type_) == want else None

    return wait_for(
        f"{kind} {ns}/{name} {type_}={want}",
        probe,
        WAIT,
        lambda: f"{kube.get('corral.dev/v1alpha1', kind, ns, name)}\n{op.log_tail()}",
    )


@pytest.fixture(scope="module")
def orders() -> Iterator[MCPServerProcess]:
    with MCPServerProcess(None, "--require", f"Authorization={TOKEN}") as server:
        yield server


def test_discovery_writes_the_tools_ready_and_used_by_with_a_header_from_a_secret(
    kube: Cluster,
    shared_operator: OperatorProcess,
    watched_namespace: str,
    orders: MCPServerProcess,
) -> None:
    ns = watched_namespace
    kube.apply(
        ns,
        secret("orders-mcp", token=TOKEN),
        secret("wrong", token="Bearer nope"),
        mcp_server(
            "orders-mcp",
            orders.url,
            headersFrom=[
                {"name": "Authorization", "secretKeyRef": {"name": "orders-mcp", "key": "token"}}
            ],
        ),
        mcp_server(
            "refused",
            orders.url,
            headersFrom=[
                {"name": "Authorization", "secretKeyRef": {"name": "wrong", "key": "token"}}
            ],
        ),
        agent("support", mcpServers=[{"name": "orders-mcp", "tools": ["lookup_order"]}]),
    )

    found = wait_condition(
        kube, shared_operator, ns, "MCPServer", "orders-mcp", ("True", "Discovered")
    )
    names = {tool["name"] for tool in found["status"]["tools"]}
    assert {"lookup_order", "header_digest", "big"} <= names
    assert found["status"]["toolCount"] == len(names)
    wait_for(
        "usedBy lists the Agent",
        lambda: (
            (server_of(kube, ns, "orders-mcp") or {}).get("status", {}).get("usedBy") == ["support"]
        ),
        WAIT,
        shared_operator.log_tail,
    )
    refused = wait_condition(
        kube, shared_operator, ns, "MCPServer", "refused", ("False", "AuthFailed")
    )
    assert "HTTP 401" in refused["status"]["conditions"][0]["message"]
    assert "nope" not in str(refused)
    assert "mcp-e2e-token" not in shared_operator.log_tail(400)
    table = kube.kubectl("get", "mcpservers", "-n", ns)
    assert table.split()[:6] == ["NAME", "READY", "REASON", "TOOLS", "URL", "AGE"]


def test_an_agent_naming_a_missing_server_waits_and_an_unlisted_allowed_tool_is_a_condition(
    kube: Cluster,
    shared_operator: OperatorProcess,
    watched_namespace: str,
    orders: MCPServerProcess,
) -> None:
    ns = watched_namespace
    kube.apply(
        ns,
        agent(
            "support",
            mcpServers=[{"name": "orders-mcp", "tools": ["lookup_order", "cancel_order"]}],
        ),
    )
    waiting = wait_condition(
        kube, shared_operator, ns, "Agent", "support", ("False", "MissingReference")
    )
    ready_message = next(c for c in waiting["status"]["conditions"] if c["type"] == "Ready")
    assert ready_message["message"] == "not found: MCPServer 'orders-mcp'"

    kube.apply(
        ns,
        secret("orders-mcp", token=TOKEN),
        mcp_server(
            "orders-mcp",
            orders.url,
            headersFrom=[
                {"name": "Authorization", "secretKeyRef": {"name": "orders-mcp", "key": "token"}}
            ],
        ),
    )
    found = wait_condition(
        kube,
        shared_operator,
        ns,
        "Agent",
        "support",
        ("False", "ToolNotOffered"),
        "MCPToolsOffered",
    )
    message = next(c for c in found["status"]["conditions"] if c["type"] == "MCPToolsOffered")[
        "message"
    ]
    assert "orders-mcp/cancel_order" in message
    assert "lookup_order" not in message


def test_a_spec_change_rolls_the_agents_a_new_tool_list_does_not(
    kube: Cluster, shared_operator: OperatorProcess, watched_namespace: str
) -> None:
    ns = watched_namespace
    with MCPServerProcess() as server:
        allowed = [{"name": "tools", "tools": ["lookup_order", "extra_tool"]}]
        kube.apply(ns, mcp_server("tools", server.url), agent("support", mcpServers=allowed))
        wait_condition(
            kube, shared_operator, ns, "Agent", "support", ("False", "ToolNotOffered"), OFFERED
        )
        first = wait_for("a config hash", lambda: config_hash(kube.deployment(ns, "support")), WAIT)

        _add_a_tool(server.url)  # the next discovery lists it: the Agent's condition heals
        wait_condition(kube, shared_operator, ns, "Agent", "support", ("True", "Offered"), OFFERED)
        assert config_hash(kube.deployment(ns, "support")) == first

        kube.apply(ns, mcp_server("tools", server.url, headers={"X-Team": "support"}))
        wait_for(
            "a new config hash",
            lambda: config_hash(kube.deployment(ns, "support")) not in (None, first),
            WAIT,
            shared_operator.log_tail,
        )


def _add_a_tool(url: str) -> None:
    import asyncio

    from mcp.client.session import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    async def call() -> None:
        async with (
            streamable_http_client(url) as (read, write, _),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            await session.call_tool("add_tool", {})

    asyncio.run(call())


@pytest.fixture
def silent_urls() -> Iterator[list[str]]:
    """Ten MCP endpoints that accept connections and never answer a byte."""
    with SilentServers(10) as silent:
        yield silent.urls


TIMEOUT = 30


def test_ten_silent_servers_do_not_delay_forty_others(
    kube: Cluster,
    shared_operator: OperatorProcess,
    watched_namespace: str,
    silent_urls: list[str],
) -> None:
    ns = watched_namespace
    with MCPServerProcess() as one, MCPServerProcess() as two:
        answering = [
            mcp_server(f"good-{n:02}", (one, two)[n % 2].url, timeoutSeconds=TIMEOUT)
            for n in range(40)
        ]
        silent = [
            mcp_server(f"silent-{n:02}", url, timeoutSeconds=TIMEOUT)
            for n, url in enumerate(silent_urls)
        ]
        kube.apply(ns, *silent, *answering)

        def all_ready() -> bool:
            listed = kube.listed(ns, "corral.dev/v1alpha1", "MCPServer")
            good = [o for o in listed if o["metadata"]["name"].startswith("good-")]
            return len(good) == 40 and all(condition(o) == ("True", "Discovered") for o in good)

        # The bound the issue sets: twice one server's timeout, whatever the silent ones do.
        # Serialized, the silent ones alone would take 10 timeouts.
        wait_for("40 answering MCPServers Ready", all_ready, 2 * TIMEOUT, shared_operator.log_tail)
        wait_condition(
            kube, shared_operator, ns, "MCPServer", "silent-00", ("False", "Unreachable")
        )
