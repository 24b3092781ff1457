"""Manifests the end-to-end tests apply: a Secret, a Persona, Tools, MCPServers and Agents."""

from __future__ import annotations

import base64
from typing import Any

API = "corral.dev/v1alpha1"


def secret(name: str, **data: str) -> dict[str, Any]:
    encoded = {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "data": encoded}


def persona(
    name: str = "support-tone", prompt: str = "You are a concise support engineer."
) -> dict[str, Any]:
    return {
        "apiVersion": API,
        "kind": "Persona",
        "metadata": {"name": name},
        "spec": {"systemPrompt": prompt},
    }


def http_tool(name: str = "order-lookup", timeout: int = 10) -> dict[str, Any]:
    return {
        "apiVersion": API,
        "kind": "Tool",
        "metadata": {"name": name},
        "spec": {
            "description": "Look up an order by id",
            "parameters": {
                "type": "object",
                "properties": {"order_id": {"type": "string"}},
                "required": ["order_id"],
            },
            "http": {
                "url": "http://orders.shop.svc:8080/orders/{order_id}",
                "timeoutSeconds": timeout,
                "headersFrom": [
                    {"name": "Authorization", "secretKeyRef": {"name": "orders", "key": "token"}}
                ],
            },
        },
    }


def agent_tool(name: str, target: str) -> dict[str, Any]:
    return {
        "apiVersion": API,
        "kind": "Tool",
        "metadata": {"name": name},
        "spec": {"description": f"Ask the {target} agent", "agent": {"name": target}},
    }


def mcp_server(name: str, url: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": API,
        "kind": "MCPServer",
        "metadata": {"name": name},
        "spec": {"url": url, **spec},
    }


def agent(name: str = "support", **spec: Any) -> dict[str, Any]:
    body = {"model": {"provider": "openai", "name": "gpt-4o-mini"}} | spec
    return {"apiVersion": API, "kind": "Agent", "metadata": {"name": name}, "spec": body}


def full_agent(name: str = "support") -> dict[str, Any]:
    """Uses a Persona, an HTTP Tool (with a Secret header), an agent Tool and a keyed model."""
    return agent(
        name,
        personaRef={"name": "support-tone"},
        model={
            "provider": "openai",
            "name": "gpt-4o-mini",
            "apiKeySecretRef": {"name": "openai", "key": "api-key"},
        },
        tools=[{"name": "order-lookup"}, {"name": "ask-billing"}],
        replicas=2,
    )


def full_set() -> list[dict[str, Any]]:
    """Everything `full_agent` references, plus the billing Agent its agent Tool calls."""
    return [
        secret("openai", **{"api-key": "sk-e2e-not-real"}),
        secret("orders", token="Bearer e2e-token"),
        persona(),
        http_tool(),
        agent("billing"),
        agent_tool("ask-billing", "billing"),
        full_agent(),
    ]
