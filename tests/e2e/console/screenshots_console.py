"""The console's screenshots in docs/, taken with the browser tests' fixtures.

Not collected by `make test` (the name does not start with test_); `make screenshots` runs it
explicitly. It applies a small, readable scene into namespace `shop` (an operator of its own
watches it; kwok runs the pods), then saves docs/console-registry.png, docs/console-agent.png
and docs/console-edit.png (an invalid edit refused next to its field). The namespace is
deleted afterwards.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from console_e2e import ConsoleProcess
from playwright.sync_api import Page, expect

from e2e.operator import operator_manifests as manifests
from e2e.operator.operator_e2e import Cluster, OperatorProcess, running, wait_ready
from localcluster import handles

pytestmark = pytest.mark.cluster
DOCS = Path(os.environ.get("CORRAL_SCREENSHOTS_DIR") or Path(__file__).parents[3] / "docs")
NAMESPACE = "shop"


def agent(name: str, persona: str, tools: list[str], model: str) -> dict[str, object]:
    return {
        "apiVersion": manifests.API,
        "kind": "Agent",
        "metadata": {"name": name},
        "spec": {
            "personaRef": {"name": persona},
            "model": {"provider": "openai", "name": model, "baseURL": "http://vllm.models:8000/v1"},
            "tools": [{"name": t} for t in tools],
            "rateLimit": {"requestsPerMinute": 60, "tokensPerMinute": 100000},
            "replicas": 2,
        },
    }


def order_lookup() -> dict[str, object]:
    tool = manifests.http_tool("order-lookup")
    tool["spec"]["http"] = {"url": "http://orders.shop.svc:8080/orders/{order_id}"}
    return tool


@pytest.fixture
def shop(cluster: handles.Cluster, console_crds: None, tmp_path: Path) -> Iterator[OperatorProcess]:
    cluster.kubectl("delete", "namespace", NAMESPACE, "--ignore-not-found", "--wait=true")
    cluster.create_namespace(NAMESPACE)
    docs = [
        manifests.persona("support-tone"),
        order_lookup(),
        manifests.agent_tool("ask-billing", "billing"),
        manifests.mcp_server("orders-mcp", "http://orders-mcp.shop.svc:8000/mcp"),
        agent("support", "support-tone", ["order-lookup", "ask-billing"], "gpt-4o-mini"),
        agent("billing", "billing-tone", [], "gemma-3-270m"),
    ]
    try:
        with running(OperatorProcess(cluster, [NAMESPACE], tmp_path / "operator.log")) as op:
            cluster.kubectl("apply", "-n", NAMESPACE, "-f", "-", input=yaml.safe_dump_all(docs))
            wait_ready(Cluster(cluster), op, NAMESPACE, "support")
            yield op
    finally:
        cluster.delete_namespace(NAMESPACE)


def test_screenshots(shop: OperatorProcess, console: ConsoleProcess, page: Page) -> None:
    page.goto(f"{console.url}/?namespace={NAMESPACE}")
    expect(page.locator(f"#row-agent-{NAMESPACE}-support td.ready")).to_have_text("Ready")
    expect(page.locator("#live")).to_have_text("live")
    page.screenshot(path=DOCS / "console-registry.png", full_page=True)

    page.goto(f"{console.url}/agents/{NAMESPACE}/support")
    expect(page.locator("#metrics")).not_to_contain_text("Reading the pods")
    page.screenshot(path=DOCS / "console-agent.png", full_page=True)

    page.goto(f"{console.url}/author/personas/{NAMESPACE}/support-tone")
    page.locator('.field[data-field="spec.systemPrompt"] textarea').fill("")
    page.click("#review")
    expect(page.locator(".field-error").first).to_be_visible()
    page.screenshot(path=DOCS / "console-edit.png", full_page=True)
