"""Index functions, and the observed state built on them: the operator's watch cache. Pure.

`handlers` registers the functions below with `@kopf.index` for the Personas, Tools, MCPServers
and Secrets: Kopf keeps those indexes current from its watch streams, updates an object's
entries before any handler sees the event that changed them, and starts no handler before every
index holds its first listing. The Agents (by name, and `agent_names`) and each child kind of
`kinds.CHILDREN` (`child_by_agent`) are kept by `watching`'s lean caches instead, in the same
shapes, which the scheduler waits for in the same way. So the operator reads nothing from the
API server: Agents, Personas and Tools by name, Secrets as digests of their keys (values go no
further than `secret_digests`), and the children. Bodies are kept without `managedFields`
(`trim`).
`dependents` answers "which Agents must be re-reconciled because this Persona/Tool/Secret/Agent
changed?"; `Indexes` is also the `resolving.Reader` of the running operator.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Collection, Mapping
from typing import Any, Final, TypeVar

from pydantic import BaseModel

from corral.api import groups
from corral.api.mcpservers import MCPServerSpec
from corral.api.personas import PersonaSpec
from corral.api.tools import ToolSpec
from corral.operator import errors, hashing, kinds, naming, resolving

T = TypeVar("T")
Key = tuple[str, str, str]
"""(kind, namespace, name)"""
Name = tuple[str, str]
"""(namespace, name)"""
ReferenceIndex = Mapping[Key, Collection[str]]
NamespaceIndex = Mapping[str, Collection[str]]
DigestIndex = Mapping[Name, Collection[Mapping[str, str]]]
BodyIndex = Mapping[Name, Collection[Mapping[str, Any]]]
OWNS_REPLICAS = "corral.dev/owns-replicas"
"""Key of a trimmed Deployment: True when the operator's server-side apply owns spec.replicas."""
_META = ("name", "namespace", "uid", "generation", "resourceVersion", "labels", "annotations")
_META_MORE = ("ownerReferences", "deletionTimestamp")


@dataclasses.dataclass(frozen=True)
class ReferencedKind:
    """A kind Agents reference by name: watched, cached, and its changes re-reconcile exactly
    the Agents that use it. Its status (`Ready`, `usedBy`) is kept by `referenced`."""

    kind: str
    spec: type[BaseModel]
    """The model its spec must validate against (else it is not Ready: InvalidSpec)."""
    references: Callable[[Any], list[errors.Reference]] | None = None
    """What one of its specs names in turn (Secrets, Agents): their changes reach the Agents
    using it too."""

    @property
    def resource(self) -> tuple[str, str, str]:
        return (groups.GROUP, groups.VERSION, groups.PLURALS[self.kind])

    @property
    def index(self) -> str:
        return groups.PLURALS[self.kind]

    @property
    def by_reference_index(self) -> str:
        return f"{groups.PLURALS[self.kind]}_by_reference"


REFERENCED: Final = (
    ReferencedKind(groups.PERSONA, PersonaSpec),
    ReferencedKind(groups.TOOL, ToolSpec, resolving.tool_references),
    ReferencedKind(groups.MCPSERVER, MCPServerSpec, resolving.mcp_server_references),
)
"""The referenced kinds: adding one is one entry here, plus how `resolving` uses it. An
MCPServer's status is its discovery's (`mcpservers`), not `referenced`'s."""
BY_REFERENCED: Final = {referenced.kind: referenced for referenced in REFERENCED}


def trim(body: Mapping[str, Any]) -> dict[str, Any]:
    """What the operator keeps of an object: no managedFields (the bulk of most objects)."""
    meta = body.get("metadata") or {}
    kept = {key: meta[key] for key in (*_META, *_META_MORE) if meta.get(key) is not None}
    trimmed = {key: value for key, value in body.items() if key != "metadata"}
    trimmed["metadata"] = kept
    if body.get("kind") == "Deployment":
        trimmed[OWNS_REPLICAS] = _owns_replicas(meta.get("managedFields"))
    return trimmed


def _owns_replicas(managed: Any) -> bool:
    for entry in managed or []:
        if entry.get("manager") == naming.MANAGER and entry.get("operation") == "Apply":
            return "f:replicas" in ((entry.get("fieldsV1") or {}).get("f:spec") or {})
    return False


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


def named_by(referenced: ReferencedKind, body: Mapping[str, Any]) -> dict[Key, str]:
    """Index a referenced object (a Tool) under what it names (its Secrets, the Agent it calls);
    an unparseable one under nothing."""
    namespace, name = identity(body)
    if referenced.references is None:
        return {}
    try:
        spec = resolving.parse_spec(referenced.spec, body, f"{referenced.kind} {name!r}")
    except errors.InvalidSpec:
        return {}
    return {(ref.kind, namespace, ref.name): name for ref in referenced.references(spec)}


def tool_references(body: Mapping[str, Any]) -> dict[Key, str]:
    """Index a Tool under the Secrets its headers use and the Agent it calls."""
    return named_by(BY_REFERENCED[groups.TOOL], body)


def mcp_server_references(body: Mapping[str, Any]) -> dict[Key, str]:
    """Index an MCPServer under the Secrets its headers use."""
    return named_by(BY_REFERENCED[groups.MCPSERVER], body)


def agent_names(body: Mapping[str, Any]) -> dict[str | Key, str]:
    """Index an Agent's name under its namespace and under everything it references: one index
    read as two (`Indexes.agents_by_namespace`, `Indexes.agents_by_reference`; a namespace and
    a (kind, namespace, name) never collide)."""
    namespace, name = identity(body)
    names: dict[str | Key, str] = {namespace: name}
    for key in agent_references(body):
        names[key] = name
    return names


def by_name(body: Mapping[str, Any]) -> dict[Name, dict[str, Any]]:
    """Index a Persona, Tool or MCPServer under (namespace, name)."""
    return {identity(body): trim(body)}


def child_by_agent(body: Mapping[str, Any]) -> dict[Name, dict[str, Any]]:
    """Index a child under (namespace, the Agent named by its label); others under nothing."""
    namespace, _ = identity(body)
    agent = ((body.get("metadata") or {}).get("labels") or {}).get(naming.AGENT_LABEL)
    return {(namespace, str(agent)): trim(body)} if agent else {}


def secret_digests(body: Mapping[str, Any]) -> dict[Name, dict[str, str]]:
    """Index a Secret under (namespace, name) as digests of its keys' values, never values."""
    namespace, name = identity(body)
    data = body.get("data") or {}
    digests = {
        key: hashing.secret_digest(namespace, name, key, value) for key, value in data.items()
    }
    return {(namespace, name): digests}


def dependents(kind: str, namespace: str, name: str, indexes: Indexes) -> set[str]:
    """Names of the Agents in `namespace` whose children depend on the object: those naming it,
    and those using a referenced object (a Tool) that names it."""
    found = set(indexes.agents_by_reference.get((kind, namespace, name), ()))
    for referrer, referrer_name in indexes.referrers(kind, namespace, name):
        found |= set(indexes.agents_by_reference.get((referrer, namespace, referrer_name), ()))
    return found


def used_by(kind: str, namespace: str, name: str, agents_by_reference: ReferenceIndex) -> list[str]:
    """The Agents referencing a Persona or Tool directly, sorted."""
    return sorted(set(agents_by_reference.get((kind, namespace, name), ())))


INDEXES: tuple[str, ...] = (
    "secrets",
    *(referenced.index for referenced in REFERENCED),
    *(r.by_reference_index for r in REFERENCED if r.references is not None),
)
"""Every Kopf index the operator registers (`handlers`), by name."""


@dataclasses.dataclass(frozen=True)
class Indexes:
    """The live watch cache (Kopf's indexes and `watching`'s caches); also the
    `resolving.Reader` of the running operator."""

    agents: BodyIndex
    agents_by_reference: ReferenceIndex
    agents_by_namespace: NamespaceIndex
    secrets: DigestIndex
    referenced: Mapping[str, BodyIndex]
    """Referenced kind -> its objects by (namespace, name)."""
    named_by: Mapping[str, ReferenceIndex]
    """Referenced kind -> its objects' names under what they name (`named_by`)."""
    children: Mapping[str, BodyIndex]
    """Child kind -> its cache, keyed by (namespace, Agent name) (`watching`)."""

    @classmethod
    def of(
        cls,
        indices: Mapping[str, Any],
        agents: BodyIndex,
        agent_names: Mapping[Any, Collection[str]],
        children: Mapping[str, BodyIndex],
    ) -> Indexes:
        """The operator's indexes out of Kopf's handler kwargs (or any mapping of them), with
        the Agents' caches (by name, and `agent_names`) and the children's."""
        return cls(
            agents=agents,
            agents_by_reference=agent_names,
            agents_by_namespace=agent_names,
            secrets=indices["secrets"],
            referenced={r.kind: indices[r.index] for r in REFERENCED},
            named_by={r.kind: indices[r.by_reference_index] for r in REFERENCED if r.references},
            children={c.kind: children[c.kind] for c in kinds.CHILDREN},
        )

    def referrers(self, kind: str, namespace: str, name: str) -> list[tuple[str, str]]:
        """(kind, name) of the referenced objects (Tools) naming the object, sorted."""
        return sorted(
            (referrer, found)
            for referrer, index in self.named_by.items()
            for found in index.get((kind, namespace, name), ())
        )

    def agent_names(self, namespace: str) -> set[str]:
        return set(self.agents_by_namespace.get(namespace, ()))

    def body(self, kind: str, namespace: str, name: str) -> Mapping[str, Any] | None:
        """The cached Agent, Persona, Tool or MCPServer, or None."""
        index = self.agents if kind == groups.AGENT else self.referenced[kind]
        return _only(index.get((namespace, name)))

    def child(self, kind: str, namespace: str, agent: str) -> Mapping[str, Any] | None:
        """The Agent's child of `kind` as last seen (the one with the child's own name)."""
        name = kinds.BY_KIND[kind].name(agent)
        for body in self.children[kind].get((namespace, agent), ()):
            if (body.get("metadata") or {}).get("name") == name:
                return body
        return None

    async def persona(self, namespace: str, name: str) -> Mapping[str, Any] | None:
        return self.body(groups.PERSONA, namespace, name)

    async def tool(self, namespace: str, name: str) -> Mapping[str, Any] | None:
        return self.body(groups.TOOL, namespace, name)

    async def agent(self, namespace: str, name: str) -> Mapping[str, Any] | None:
        exists = name in self.agents_by_namespace.get(namespace, ())
        return {"metadata": {"name": name, "namespace": namespace}} if exists else None

    async def mcp_server(self, namespace: str, name: str) -> Mapping[str, Any] | None:
        return self.body(groups.MCPSERVER, namespace, name)

    async def secret_digest(self, namespace: str, name: str, key: str) -> str | None:
        digests = _only(self.secrets.get((namespace, name)))
        return None if digests is None else digests.get(key)


def _only(values: Collection[T] | None) -> T | None:
    """The one value an object contributes under its (namespace, name), or None."""
    return next(iter(values), None) if values else None
