"""Invalid manifests, each with the field its rejection must name.

One table for two judges: the API server (through the generated CRDs) and the pydantic models
(which `corral render` relies on offline). test_api_validation.py holds both to every row.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

DELETE = object()

AGENT_SPEC: dict[str, Any] = {
    "model": {"provider": "openai", "name": "gemma-3-270m", "baseURL": "http://127.0.0.1:8000/v1"}
}
PERSONA_SPEC: dict[str, Any] = {"systemPrompt": "You are terse."}
TOOL_SPEC: dict[str, Any] = {
    "description": "Look up an order by id.",
    "parameters": {
        "type": "object",
        "properties": {"order_id": {"type": "string"}},
        "required": ["order_id"],
    },
    "http": {"url": "http://orders.shop.svc:8080/orders/{order_id}"},
}
SECRET = {"name": "creds", "key": "api-key"}


@dataclasses.dataclass(frozen=True)
class Case:
    id: str
    manifest: dict[str, Any]
    field: str  # the path (as the API server prints it) that the rejection must name


def merged(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """`base` with `patch` applied: nested dicts merge, other values replace, DELETE removes."""
    out = copy.deepcopy(base)
    for key, value in patch.items():
        if value is DELETE:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merged(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def manifest(kind: str, spec: dict[str, Any], name: str) -> dict[str, Any]:
    return {
        "apiVersion": "corral.dev/v1alpha1",
        "kind": kind,
        "metadata": {"name": name},
        "spec": spec,
    }


def agent(id: str, field: str, name: str = "bad-agent", **patch: Any) -> Case:
    return Case(id, manifest("Agent", merged(AGENT_SPEC, patch), name), field)


def persona(id: str, field: str, **patch: Any) -> Case:
    return Case(id, manifest("Persona", merged(PERSONA_SPEC, patch), "bad-persona"), field)


def tool(id: str, field: str, name: str = "bad-tool", **patch: Any) -> Case:
    return Case(id, manifest("Tool", merged(TOOL_SPEC, patch), name), field)


MCP_SPEC: dict[str, Any] = {"url": "http://orders-mcp.shop.svc:8000/mcp"}


def mcp(id: str, field: str, **patch: Any) -> Case:
    return Case(id, manifest("MCPServer", merged(MCP_SPEC, patch), "bad-mcp"), field)


def model(**patch: Any) -> dict[str, Any]:
    return merged(AGENT_SPEC["model"], patch)


CASES = [
    # Agent: types, enums, bounds
    agent("agent-without-model", "spec.model", model=DELETE),
    agent(
        "agent-replicas-and-autoscaling",
        "spec.autoscaling",
        replicas=2,
        autoscaling={"minReplicas": 1, "maxReplicas": 3},
    ),
    agent(
        "agent-autoscaling-min-above-max",
        "spec.autoscaling",
        autoscaling={"minReplicas": 5, "maxReplicas": 2},
    ),
    agent(
        "agent-autoscaling-without-max",
        "spec.autoscaling.maxReplicas",
        autoscaling={"minReplicas": 1},
    ),
    agent("agent-unknown-provider", "spec.model.provider", model={"provider": "anthropic"}),
    agent("agent-model-name-not-a-string", "spec.model.name", model={"name": 42}),
    agent("agent-empty-model-name", "spec.model.name", model={"name": ""}),
    agent("agent-base-url-not-http", "spec.model.baseURL", model={"baseURL": "ftp://models/v1"}),
    agent(
        "agent-base-url-oversized",
        "spec.model.baseURL",
        model={"baseURL": "http://models.svc/" + "v" * 2040},
    ),
    agent("agent-temperature-above-2", "spec.model.temperature", model={"temperature": 2.5}),
    agent("agent-zero-max-tokens", "spec.model.maxTokens", model={"maxTokens": 0}),
    agent("agent-timeout-over-600", "spec.model.timeoutSeconds", model={"timeoutSeconds": 601}),
    agent(
        "agent-secret-key-with-spaces",
        "spec.model.apiKeySecretRef.key",
        model={"apiKeySecretRef": {"name": "openai", "key": "api key"}},
    ),
    agent(
        "agent-secret-ref-without-name",
        "spec.model.apiKeySecretRef.name",
        model={"apiKeySecretRef": {"key": "api-key"}},
    ),
    agent("agent-instructions-oversized", "spec.instructions", instructions="x" * 32769),
    agent(
        "agent-persona-ref-bad-name", "spec.personaRef.name", personaRef={"name": "Support Tone"}
    ),
    agent("agent-negative-replicas", "spec.replicas", replicas=-1),
    agent("agent-replicas-not-a-number", "spec.replicas", replicas="two"),
    agent("agent-image-with-spaces", "spec.image", image="corral runtime:1"),
    agent(
        "agent-bad-quantity",
        "spec.resources.requests.cpu",
        resources={"requests": {"cpu": "lots"}},
    ),
    agent(
        "agent-unknown-toleration-effect",
        "spec.tolerations[0].effect",
        tolerations=[{"key": "k", "effect": "Sometimes"}],
    ),
    # Agent: rate limits, auth, memory
    agent(
        "agent-negative-requests-per-minute",
        "spec.rateLimit.requestsPerMinute",
        rateLimit={"requestsPerMinute": -1},
    ),
    agent(
        "agent-zero-tokens-per-minute",
        "spec.rateLimit.tokensPerMinute",
        rateLimit={"tokensPerMinute": 0},
    ),
    agent("agent-empty-rate-limit", "spec.rateLimit", rateLimit={}),
    agent("agent-auth-without-secret", "spec.auth.apiKeysSecretRef", auth={}),
    agent("agent-memory-ttl-too-short", "spec.memory.ttlSeconds", memory={"ttlSeconds": 5}),
    agent(
        "agent-memory-too-many-messages",
        "spec.memory.maxMessages",
        memory={"maxMessages": 1001},
    ),
    # Agent: cross-field rules
    agent("agent-fallback-equals-primary", "spec.fallbacks", fallbacks=[model(temperature=0.1)]),
    agent(
        "agent-six-fallbacks",
        "spec.fallbacks",
        fallbacks=[model(name=f"fallback-{i}") for i in range(6)],
    ),
    agent(
        "agent-fallback-unknown-provider",
        "spec.fallbacks[0].provider",
        fallbacks=[{"provider": "claude", "name": "x"}],
    ),
    agent("agent-duplicate-tools", "spec.tools", tools=[{"name": "lookup"}, {"name": "lookup"}]),
    agent("agent-33-tools", "spec.tools", tools=[{"name": f"tool-{i}"} for i in range(33)]),
    agent("agent-tool-ref-bad-name", "spec.tools[0].name", tools=[{"name": "Order_Lookup"}]),
    agent("agent-name-starts-with-a-digit", "metadata.name", name="1-support"),
    # Agent: shared state, budgets, pricing
    agent("agent-budget-without-state-store", "spec.budget", budget={"tokensPerDay": 1000}),
    agent(
        "agent-state-store-not-redis",
        "spec.stateStore.url",
        stateStore={"url": "http://valkey.corral-system.svc:6379"},
    ),
    agent(
        "agent-state-store-password-in-url",
        "spec.stateStore.url",
        stateStore={"url": "redis://:hunter2@valkey.corral-system.svc:6379/0"},
    ),
    agent(
        "agent-state-store-unknown-policy",
        "spec.stateStore.failurePolicy",
        stateStore={"url": "redis://valkey:6379/0", "failurePolicy": "FailSometimes"},
    ),
    agent(
        "agent-state-store-ca-without-tls",
        "spec.stateStore",
        stateStore={"url": "redis://valkey:6379/0", "caSecretRef": {"name": "r", "key": "ca.crt"}},
    ),
    agent(
        "agent-empty-budget",
        "spec.budget",
        stateStore={"url": "redis://valkey:6379/0"},
        budget={},
    ),
    agent(
        "agent-budget-cost-not-a-decimal",
        "spec.budget.costPerDay",
        stateStore={"url": "redis://valkey:6379/0"},
        budget={"costPerDay": "25 dollars"},
        model={"pricing": {"promptPerMillion": "0.15", "completionPerMillion": "0.60"}},
    ),
    agent(
        "agent-cost-budget-without-pricing",
        "spec.budget",
        stateStore={"url": "redis://valkey:6379/0"},
        budget={"costPerMonth": "500.00"},
    ),
    # Persona
    persona("persona-empty-system-prompt", "spec.systemPrompt", systemPrompt=""),
    persona("persona-without-system-prompt", "spec.systemPrompt", systemPrompt=DELETE),
    persona("persona-system-prompt-not-a-string", "spec.systemPrompt", systemPrompt=["a", "b"]),
    persona("persona-description-oversized", "spec.description", description="d" * 1025),
    persona(
        "persona-example-without-answer",
        "spec.examples[0].assistant",
        examples=[{"user": "hi"}],
    ),
    # Tool
    tool("tool-without-description", "spec.description", description=DELETE),
    tool("tool-both-http-and-agent", "spec.http", agent={"name": "billing"}),
    tool("tool-neither-http-nor-agent", "spec.http", http=DELETE),
    tool("tool-parameters-not-an-object", "spec.parameters.type", parameters={"type": "string"}),
    tool(
        "tool-parameters-without-type",
        "spec.parameters.type",
        parameters={"type": DELETE},
    ),
    tool(
        "tool-required-parameter-undefined",
        "spec.parameters.required",
        parameters={"required": ["order_id", "customer_id"]},
    ),
    tool(
        "tool-required-parameter-twice",
        "spec.parameters.required",
        parameters={"required": ["order_id", "order_id"]},
    ),
    tool(
        "tool-url-placeholder-undefined",
        "spec.http.url",
        http={"url": "http://orders.shop.svc:8080/customers/{customer_id}"},
    ),
    tool("tool-url-without-scheme", "spec.http.url", http={"url": "orders.shop.svc/orders"}),
    tool("tool-unknown-method", "spec.http.method", http={"method": "FETCH"}),
    tool("tool-zero-timeout", "spec.http.timeoutSeconds", http={"timeoutSeconds": 0}),
    tool("tool-bad-header-name", "spec.http.headers", http={"headers": {"Bad Header": "x"}}),
    tool(
        "tool-header-static-and-from-secret",
        "spec.http.headersFrom",
        http={
            "headers": {"Authorization": "Bearer x"},
            "headersFrom": [{"name": "Authorization", "secretKeyRef": SECRET}],
        },
    ),
    tool(
        "tool-header-from-bad-secret-key",
        "spec.http.headersFrom[0].secretKeyRef.key",
        http={"headersFrom": [{"name": "X-Token", "secretKeyRef": {"name": "s", "key": "a/b"}}]},
    ),
    tool("tool-agent-bad-name", "spec.agent.name", http=DELETE, agent={"name": "Billing"}),
    tool("tool-name-with-dots", "metadata.name", name="orders.lookup"),
    tool("tool-name-over-64-characters", "metadata.name", name="t" * 65),
    # MCPServer, and the Agent's references to MCPServers
    mcp("mcp-without-url", "spec.url", url=DELETE),
    mcp("mcp-url-not-http", "spec.url", url="ws://orders-mcp.shop.svc/mcp"),
    mcp("mcp-unknown-transport", "spec.transport", transport="stdio"),
    mcp("mcp-zero-timeout", "spec.timeoutSeconds", timeoutSeconds=0),
    mcp("mcp-bad-header-name", "spec.headers", headers={"Bad Header": "x"}),
    mcp(
        "mcp-header-static-and-from-secret",
        "spec.headersFrom",
        headers={"Authorization": "Bearer x"},
        headersFrom=[{"name": "Authorization", "secretKeyRef": SECRET}],
    ),
    agent(
        "agent-same-mcp-server-twice",
        "spec.mcpServers",
        mcpServers=[{"name": "orders-mcp"}, {"name": "orders-mcp"}],
    ),
    agent("agent-mcp-server-bad-name", "spec.mcpServers[0].name", mcpServers=[{"name": "Orders"}]),
    agent(
        "agent-mcp-allow-list-empty-name",
        "spec.mcpServers[0].tools[0]",
        mcpServers=[{"name": "orders-mcp", "tools": [""]}],
    ),
]
