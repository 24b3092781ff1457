"""Kopf index functions, and the lookups and the `resolving.Reader` built on them. Pure.

`handlers` registers the functions below with `@kopf.index`; Kopf keeps the resulting indexes
current from its watch streams, and updates an object's entries before any handler sees the
event that changed them. `dependents` answers "which Agents must be re-reconciled because this
Persona/Tool/Secret/Agent changed?"; `Indexes` also resolves an Agent's references (the specs
of Personas and Tools, which Agents exist, digests of Secret keys), so a reconcile reads none
of them from the API server. Secret values are reduced to digests in the index function
(`secret_digests`) and go no further.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Mapping
from typing import Any, TypeVar

from pydantic import ValidationError

from corral.api import groups
from corral.api.mcpservers import MCPServerSpec
from corral.api.tools import ToolSpec
from corral.operator import errors, hashing, resolving

T = TypeVar("T")
Key = tuple[str, str, str]
"""(kind, namespace, name)"""
Name = tuple[str, str]
"""(namespace, name)"""
ReferenceIndex = Mapping[Key, Collection[str]]
NamespaceIndex = Mapping[str, Collection[str]]
SpecIndex = Mapping[Name, Collection[Mapping[str, Any]]]
DigestIndex = Mapping[Name, Collection[Mapping[str, str]]]


def identity(body: Mapping[str, Any]) -> tuple[str, str]:
    """(namespace, name) of an object; every Corral kind is namespaced."""
    meta = body.get("metadata") or {}
    return str(meta.get("namespace") or "default"), str(meta.get("name"))


def agent_references(body: Mapping[str, Any]) -> dict[Key, str]:
    """Index an Agent under everything it references; an unparseable Agent under nothing."""
    namespace, name = identity(body)
    try:
        agent = resolving.parse_agent(body)
    except errors.InvalidSpec:
        return {}
    return {(ref.kind, namespace, ref.name): name for ref in resolving.agent_references(agent.spec)}


def tool_references(body: Mapping[str, Any]) -> dict[Key, str]:
    """Index a Tool under the Secrets its headers use and the Agent it calls."""
    namespace, name = identity(body)
    try:
        spec = ToolSpec.model_validate(body.get("spec") or {})
    except ValidationError:
        return {}
    return {(ref.kind, namespace, ref.name): name for ref in resolving.tool_references(spec)}


def mcp_server_references(body: Mapping[str, Any]) -> dict[Key, str]:
    """Index an MCPServer under the Secrets its headers use."""
    namespace, name = identity(body)
    try:
        spec = MCPServerSpec.model_validate(body.get("spec") or {})
    except ValidationError:
        return {}
    return {(r.kind, namespace, r.name): name for r in resolving.mcp_server_references(spec)}


def mcp_server_by_name(body: Mapping[str, Any]) -> dict[Name, dict[str, Any]]:
    """Index an MCPServer under (namespace, name): its spec and the names of the tools its last
    discovery listed (what an Agent's allow-list is checked against)."""
    listed = (body.get("status") or {}).get("tools")
    kept: dict[str, Any] = {"spec": body.get("spec") or {}}
    if listed is not None:
        kept["status"] = {"tools": [{"name": tool.get("name")} for tool in listed]}
    return {identity(body): kept}


def name_by_namespace(body: Mapping[str, Any]) -> dict[str, str]:
    """Index an object's name under its namespace."""
    namespace, name = identity(body)
    return {namespace: name}


def spec_by_name(body: Mapping[str, Any]) -> dict[Name, dict[str, Any]]:
    """Index a Persona or Tool under (namespace, name), keeping only its spec."""
    return {identity(body): {"spec": body.get("spec") or {}}}


def secret_digests(body: Mapping[str, Any]) -> dict[Name, dict[str, str]]:
    """Index a Secret under (namespace, name) as digests of its keys' values, never values."""
    namespace, name = identity(body)
    data = body.get("data") or {}
    digests = {
        key: hashing.secret_digest(namespace, name, key, value) for key, value in data.items()
    }
    return {(namespace, name): digests}


def dependents(
    kind: str,
    namespace: str,
    name: str,
    agents_by_reference: ReferenceIndex,
    tools_by_reference: ReferenceIndex,
    mcp_servers_by_reference: ReferenceIndex | None = None,
) -> set[str]:
    """Names of the Agents in `namespace` whose children depend on the object."""
    direct = set(agents_by_reference.get((kind, namespace, name), ()))
    if kind not in ("Secret", groups.AGENT):
        return direct
    via_tools: set[str] = set()
    for tool in tools_by_reference.get((kind, namespace, name), ()):
        via_tools |= set(agents_by_reference.get((groups.TOOL, namespace, tool), ()))
    for server in (mcp_servers_by_reference or {}).get((kind, namespace, name), ()):
        via_tools |= set(agents_by_reference.get((groups.MCPSERVER, namespace, server), ()))
    return direct | via_tools


def used_by(kind: str, namespace: str, name: str, agents_by_reference: ReferenceIndex) -> list[str]:
    """The Agents referencing a Persona or Tool directly, sorted."""
    return sorted(set(agents_by_reference.get((kind, namespace, name), ())))


@dataclasses.dataclass(frozen=True)
class Indexes:
    """Kopf's live indexes; also the `resolving.Reader` of the running operator."""

    agents_by_reference: ReferenceIndex
    tools_by_reference: ReferenceIndex
    agents_by_namespace: NamespaceIndex
    personas: SpecIndex
    tools: SpecIndex
    secrets: DigestIndex
    mcp_servers: SpecIndex = dataclasses.field(default_factory=dict)
    mcp_servers_by_reference: ReferenceIndex = dataclasses.field(default_factory=dict)

    def agent_names(self, namespace: str) -> set[str]:
        return set(self.agents_by_namespace.get(namespace, ()))

    def names(self, kind: str) -> list[Name]:
        """(namespace, name) of every Persona or Tool, sorted."""
        return sorted(self.personas if kind == groups.PERSONA else self.tools)

    async def persona(self, namespace: str, name: str) -> Mapping[str, Any] | None:
        return _only(self.personas.get((namespace, name)))

    async def tool(self, namespace: str, name: str) -> Mapping[str, Any] | None:
        return _only(self.tools.get((namespace, name)))

    async def agent(self, namespace: str, name: str) -> Mapping[str, Any] | None:
        exists = name in self.agents_by_namespace.get(namespace, ())
        return {"metadata": {"name": name, "namespace": namespace}} if exists else None

    async def mcp_server(self, namespace: str, name: str) -> Mapping[str, Any] | None:
        return _only(self.mcp_servers.get((namespace, name)))

    async def secret_digest(self, namespace: str, name: str, key: str) -> str | None:
        digests = _only(self.secrets.get((namespace, name)))
        return None if digests is None else digests.get(key)


def _only(values: Collection[T] | None) -> T | None:
    """The one value an object contributes under its (namespace, name), or None."""
    return next(iter(values), None) if values else None
