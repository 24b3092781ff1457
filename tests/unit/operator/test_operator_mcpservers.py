"""MCPServers as references of Agents (resolution, rendering, hashes, conditions) and the
status discovery derives for them. Pure parts; discovery against real servers and the API
server is in tests/e2e/operator/test_operator_e2e_mcp.py."""

from __future__ import annotations

import json
from typing import Any

import pytest
from mcp import types
from operator_testkit import FakeReader, agent, make_settings

from corral.operator import discovering, errors, indexing, mcpstatuses, resolving, statuses
from corral.operator.rendering import children

NOW = "2026-12-01T00:00:00Z"
TOKEN_REF = {"name": "orders-mcp", "key": "token"}


def mcp_server(tools: list[str] | None = None, **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "metadata": {"name": "orders-mcp", "namespace": "default", "generation": 1},
        "spec": {
            "url": "http://orders-mcp.shop.svc:8000/mcp",
            "headersFrom": [{"name": "Authorization", "secretKeyRef": TOKEN_REF}],
            **spec,
        },
    }
    if tools is not None:
        body["status"] = {"tools": [{"name": name} for name in tools]}
    return body


def reader(server: dict[str, Any] | None = None, token: str = "dG9rZW4=") -> FakeReader:
    return FakeReader(
        mcp_servers={"orders-mcp": server or mcp_server()},
        secrets={("orders-mcp", "token"): token},
    )


def using(**ref: Any) -> dict[str, Any]:
    return agent(mcpServers=[{"name": "orders-mcp", **ref}])


async def rendered(body: dict[str, Any], source: FakeReader) -> children.Children:
    return children.render(await resolving.resolve(body, source), make_settings())


@pytest.mark.anyio
async def test_an_agent_naming_a_missing_mcp_server_is_a_missing_reference() -> None:
    with pytest.raises(errors.MissingReference, match="MCPServer 'absent'"):
        await resolving.resolve(agent(mcpServers=[{"name": "absent"}]), FakeReader())


@pytest.mark.anyio
async def test_the_runtime_config_names_the_header_env_never_its_value() -> None:
    out = await rendered(using(tools=["lookup_order"]), reader())
    config = json.loads(out.by_kind["ConfigMap"]["data"]["runtime.json"])
    (server,) = config["mcpServers"]
    assert server["headerEnvs"] == {"Authorization": "CORRAL_MCP_0_HEADER_0"}
    assert server["tools"] == ["lookup_order"]
    env = out.deployment["spec"]["template"]["spec"]["containers"][0]["env"]
    assert {"name": "CORRAL_MCP_0_HEADER_0", "valueFrom": {"secretKeyRef": TOKEN_REF}} in env
    assert "dG9rZW4" not in json.dumps(out.objects())


@pytest.mark.anyio
async def test_a_spec_or_secret_change_rolls_the_pods_a_new_tool_list_does_not() -> None:
    before = (await rendered(using(), reader())).config_hash
    listed = (await rendered(using(), reader(mcp_server(tools=["a", "b"])))).config_hash
    moved = mcp_server(url="http://elsewhere.shop.svc:8000/mcp")
    assert listed == before
    assert (await rendered(using(), reader(moved))).config_hash != before
    assert (await rendered(using(), reader(token="b3RoZXI="))).config_hash != before


@pytest.mark.anyio
async def test_an_allow_listed_tool_the_server_does_not_list_is_a_condition_not_a_failure() -> None:
    resolved = await resolving.resolve(
        using(tools=["lookup_order", "cancel_order"]), reader(mcp_server(tools=["lookup_order"]))
    )
    assert resolved.not_offered == ("orders-mcp/cancel_order",)
    seen = statuses.Observation(
        generation=1,
        references_resolved=True,
        rollout=statuses.Rollout("Available", "Available", "ok", 1, 1, 1, 1),
        mcp_not_offered=resolved.not_offered,
    )
    conditions = {c["type"]: c for c in statuses.agent_status(seen, None, NOW)["conditions"]}
    assert conditions["Ready"]["status"] == "True"
    offered = conditions["MCPToolsOffered"]
    assert (offered["status"], offered["reason"]) == ("False", "ToolNotOffered")
    assert "orders-mcp/cancel_order" in offered["message"]


@pytest.mark.anyio
async def test_before_any_discovery_the_allow_list_is_not_judged() -> None:
    resolved = await resolving.resolve(using(tools=["anything"]), reader())
    assert resolved.not_offered == ()


def test_a_secret_used_by_an_mcp_server_makes_its_agents_dependents() -> None:
    server_refs = {("Secret", "default", "orders-mcp"): ["orders-mcp"]}
    agent_refs = {("MCPServer", "default", "orders-mcp"): ["support"]}
    indexes = indexing.Indexes(
        agents={},
        agents_by_reference=agent_refs,
        agents_by_namespace={},
        secrets={},
        referenced={},
        named_by={"MCPServer": server_refs},
        children={},
    )
    found = indexing.dependents("Secret", "default", "orders-mcp", indexes)
    assert found == {"support"}
    assert indexing.mcp_server_references(mcp_server()) == {
        ("Secret", "default", "orders-mcp"): "orders-mcp"
    }


def listed(*names: str) -> discovering.Discovery:
    tools = tuple(
        types.Tool(name=n, description=f"{n} tool", inputSchema={"type": "object"}) for n in names
    )
    return discovering.Discovery(discovering.DISCOVERED, "listed", tools)


def test_a_discovery_writes_ready_the_tools_and_used_by() -> None:
    status = mcpstatuses.desired(3, listed("b", "a"), ["support"], None, NOW)
    assert status["tools"] == [
        {"name": "a", "description": "a tool"},
        {"name": "b", "description": "b tool"},
    ]
    assert status["toolCount"] == 2
    assert status["usedBy"] == ["support"]
    (ready,) = status["conditions"]
    assert (ready["status"], ready["reason"], ready["observedGeneration"]) == (
        "True",
        "Discovered",
        3,
    )


def test_a_failed_discovery_keeps_the_last_tools_and_says_why() -> None:
    before = mcpstatuses.desired(1, listed("a"), [], None, NOW)
    failed = discovering.Discovery(discovering.AUTH_FAILED, "the server answered HTTP 401")
    status = mcpstatuses.desired(1, failed, [], before, "2026-12-02T00:00:00Z")
    assert status["tools"] == before["tools"]
    (ready,) = status["conditions"]
    assert (ready["status"], ready["reason"]) == ("False", "AuthFailed")


def test_an_unchanged_server_rediscovered_later_gives_the_same_status() -> None:
    before = mcpstatuses.desired(1, listed("a"), ["support"], None, NOW)
    again = mcpstatuses.desired(1, listed("a"), ["support"], before, "2026-12-09T00:00:00Z")
    assert again == before


def test_status_tools_are_bounded() -> None:
    many = listed(*(f"tool-{n:04}" for n in range(1000)))
    status = mcpstatuses.desired(1, many, [], None, NOW)
    assert len(status["tools"]) == 256
    assert status["toolCount"] == 1000
