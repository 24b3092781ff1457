"""Registry rows from objects and the registry's filters (pure)."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from corral.console import rows

NOW = datetime.datetime(2026, 1, 2, 12, 0, 0, tzinfo=datetime.UTC)


def agent(**status: Any) -> dict[str, Any]:
    return {
        "apiVersion": "corral.dev/v1alpha1",
        "kind": "Agent",
        "metadata": {
            "name": "support",
            "namespace": "shop",
            "generation": 3,
            "creationTimestamp": "2026-01-02T11:00:00Z",
        },
        "spec": {"model": {"provider": "openai", "name": "gpt-4o-mini"}, "replicas": 2},
        "status": status,
    }


def ready(status: str, reason: str, observed: int = 3, message: str = "") -> dict[str, Any]:
    return {
        "type": "Ready",
        "status": status,
        "reason": reason,
        "message": message,
        "observedGeneration": observed,
    }


def test_an_agent_row_has_ready_reason_model_replicas_endpoint_age_and_a_link() -> None:
    obj = agent(
        conditions=[ready("True", "Available")],
        replicas=2,
        readyReplicas=1,
        endpoint="http://support.shop.svc:8080/v1",
    )
    r = rows.row(obj, NOW)
    assert (r.ready.status, r.ready.reason) == ("True", "Available")
    assert r.model == "gpt-4o-mini"
    assert r.replicas == "1/2"
    assert r.endpoint == "http://support.shop.svc:8080/v1"
    assert r.age == "60m"
    assert r.link == "/agents/shop/support"
    assert r.key == "row-agent-shop-support"


def test_a_ready_condition_of_an_older_generation_is_unknown_not_ready() -> None:
    r = rows.row(agent(conditions=[ready("True", "Available", observed=2)]), NOW)
    assert r.ready.status == "Unknown"
    assert r.ready.reason == "Reconciling"
    assert "generation 2" in r.ready.message


def test_an_object_without_status_is_pending() -> None:
    r = rows.row(agent(), NOW)
    assert (r.ready.status, r.ready.reason) == ("Unknown", "Pending")
    assert r.replicas == "0/2"


def test_tool_and_mcpserver_rows_show_their_target() -> None:
    tool = {
        "kind": "Tool",
        "metadata": {"name": "lookup", "namespace": "shop"},
        "spec": {"http": {"url": "http://o/{id}", "method": "POST"}},
    }
    by_agent = {"kind": "Tool", "metadata": {"name": "ask", "namespace": "shop"}}
    by_agent["spec"] = {"agent": {"name": "billing"}}
    mcp = {
        "kind": "MCPServer",
        "metadata": {"name": "orders", "namespace": "shop"},
        "spec": {"url": "http://mcp/mcp"},
        "status": {"tools": [{"name": "a"}, {"name": "b"}]},
    }
    assert rows.row(tool, NOW).endpoint == "POST http://o/{id}"
    assert rows.row(tool, NOW).link == "/author/tools/shop/lookup"
    assert rows.row(by_agent, NOW).endpoint == "agent billing"
    assert (rows.row(mcp, NOW).endpoint, rows.row(mcp, NOW).model) == ("http://mcp/mcp", "2 tools")
    assert rows.row(mcp, NOW).link is None


@pytest.mark.parametrize(
    ("created", "expected"),
    [
        ("2026-01-02T11:59:15Z", "45s"),
        ("2026-01-02T11:58:00Z", "2m"),
        ("2026-01-02T07:00:00Z", "5h"),
        ("2025-12-30T12:00:00Z", "3d"),
        ("2026-01-02T12:00:05Z", "0s"),  # a clock a little behind the server's
        (None, ""),
        ("not a time", ""),
    ],
)
def test_age_reads_like_kubectl(created: str | None, expected: str) -> None:
    assert rows.age(created, NOW) == expected


def test_filters_by_namespace_readiness_and_text() -> None:
    good = rows.row(agent(conditions=[ready("True", "Available")]), NOW)
    bad = rows.row(agent(conditions=[ready("False", "PersonaMissing", message="no tone")]), NOW)
    assert rows.Filters(ready="true").matches(good)
    assert not rows.Filters(ready="true").matches(bad)
    assert rows.Filters(ready="false").matches(bad)
    assert rows.Filters(text="personamissing").matches(bad)
    assert rows.Filters(text="no tone").matches(bad)
    assert not rows.Filters(text="no tone").matches(good)
    assert not rows.Filters(namespace="other").matches(good)


def test_filters_from_the_query_ignore_values_they_do_not_know() -> None:
    f = rows.Filters.from_query(
        {"kind": "secrets", "ready": "maybe", "q": " sup ", "namespace": ""}
    )
    assert f == rows.Filters(text="sup")
    assert len(f.kinds()) == 4
    assert [k.kind for k in rows.Filters.from_query({"kind": "tools"}).kinds()] == ["Tool"]
