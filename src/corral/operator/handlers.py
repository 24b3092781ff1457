"""Kopf handlers: thin wiring from Kopf's events to `operating.Operator` and `indexing`.

Importing this module registers the handlers on Kopf's default registry; `main.run` does that.
Each handler is a few lines; errors are mapped to Kopf's retry semantics here and only here
(`errors.to_kopf`). Event handlers only hand the event to the `Operator`, which decides
whether it is news and does any work in the background. A Secret's values are reduced to
digests here and in its index function; they go no further. There are no finalizers: owner
references delete the children, so deleting an Agent never waits for the operator.
"""

from __future__ import annotations

from typing import Any

import kopf

from corral.api import groups
from corral.operator import errors, hashing, indexing, main, naming
from corral.operator.operating import Operator

AGENTS = (groups.GROUP, groups.VERSION, groups.PLURALS[groups.AGENT])
PERSONAS = (groups.GROUP, groups.VERSION, groups.PLURALS[groups.PERSONA])
TOOLS = (groups.GROUP, groups.VERSION, groups.PLURALS[groups.TOOL])
MCPSERVERS = (groups.GROUP, groups.VERSION, groups.PLURALS[groups.MCPSERVER])
CHILDREN: dict[str, main.Resource] = {
    "ConfigMap": ("v1", "configmaps"),
    "Service": ("v1", "services"),
    "Deployment": ("apps", "v1", "deployments"),
    "PodDisruptionBudget": ("policy", "v1", "poddisruptionbudgets"),
}


def _ns(namespace: str | None) -> str:
    """Every Corral kind and every child is namespaced."""
    return namespace or "default"


def _operator(memo: kopf.Memo) -> Operator:
    operator: Operator = memo["operator"]
    return operator


@kopf.on.startup()
async def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **kwargs: Any) -> None:
    memo["operator"] = await main.start(settings, memo, kwargs, list(CHILDREN.values()))


@kopf.on.cleanup()
async def cleanup(memo: kopf.Memo, **_: Any) -> None:
    await _operator(memo).stop()


@kopf.index(*AGENTS)
def agents_by_reference(body: kopf.Body, **_: Any) -> dict[indexing.Key, str]:
    return indexing.agent_references(body)


@kopf.index(*AGENTS)
def agents_by_namespace(body: kopf.Body, **_: Any) -> dict[str, str]:
    return indexing.name_by_namespace(body)


@kopf.index(*TOOLS)
def tools_by_reference(body: kopf.Body, **_: Any) -> dict[indexing.Key, str]:
    return indexing.tool_references(body)


@kopf.index(*PERSONAS)
def personas(body: kopf.Body, **_: Any) -> dict[indexing.Name, dict[str, Any]]:
    return indexing.spec_by_name(body)


@kopf.index(*TOOLS)
def tools(body: kopf.Body, **_: Any) -> dict[indexing.Name, dict[str, Any]]:
    return indexing.spec_by_name(body)


@kopf.index(*MCPSERVERS)
def mcp_servers(body: kopf.Body, **_: Any) -> dict[indexing.Name, dict[str, Any]]:
    return indexing.mcp_server_by_name(body)


@kopf.index(*MCPSERVERS)
def mcp_servers_by_reference(body: kopf.Body, **_: Any) -> dict[indexing.Key, str]:
    return indexing.mcp_server_references(body)


@kopf.index("v1", "secrets")
def secrets(body: kopf.Body, **_: Any) -> dict[indexing.Name, dict[str, str]]:
    return indexing.secret_digests(body)


@kopf.on.resume(*AGENTS)
@kopf.on.create(*AGENTS)
@kopf.on.update(*AGENTS)
async def reconcile_agent(
    namespace: str | None, name: str, retry: int, memo: kopf.Memo, **_: Any
) -> None:
    operator = _operator(memo)
    try:
        await operator.reconciler.reconcile(_ns(namespace), name)
    except errors.OperatorError as err:
        s = operator.settings
        raise errors.to_kopf(err, retry, s.retry_base_seconds, s.retry_max_seconds) from err


@kopf.on.event(*AGENTS)
async def agent_event(type: str | None, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    _operator(memo).agent_changed(type, body)


@kopf.on.event(*PERSONAS)
async def persona_event(type: str | None, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    _operator(memo).referenced_changed(groups.PERSONA, type, body)


@kopf.on.event(*TOOLS)
async def tool_event(type: str | None, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    _operator(memo).referenced_changed(groups.TOOL, type, body)


@kopf.on.event(*MCPSERVERS)
async def mcp_server_event(type: str | None, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    # Its discovery runs in its own task; a new generation also reconciles the Agents using it.
    operator = _operator(memo)
    if operator.discoveries is not None:
        operator.discoveries.observe(type, body)
    operator.referenced_changed(groups.MCPSERVER, type, body)


@kopf.on.event("v1", "secrets")
async def secret_event(
    type: str | None, namespace: str | None, name: str, body: kopf.Body, memo: kopf.Memo, **_: Any
) -> None:
    # The values are reduced to one digest here: only "did the data change?" goes further.
    digest = hashing.secret_data_digest(_ns(namespace), name, body.get("data"))
    _operator(memo).secret_changed(type, _ns(namespace), name, digest)


def _on_child(kind: str, resource: main.Resource) -> None:
    @kopf.on.event(*resource, labels=naming.MANAGED_SELECTOR, id=f"{kind.lower()}_event")
    async def child_event(
        type: str | None,
        namespace: str | None,
        name: str,
        labels: kopf.Labels,
        meta: kopf.Meta,
        body: kopf.Body,
        memo: kopf.Memo,
        **_: Any,
    ) -> None:
        agent = labels.get(naming.AGENT_LABEL)
        version = meta.get("resourceVersion")
        _operator(memo).child_changed(type, _ns(namespace), agent, kind, name, version, body)


for _kind, _resource in CHILDREN.items():
    _on_child(_kind, _resource)
