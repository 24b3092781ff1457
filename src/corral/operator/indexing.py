"""Kopf index functions and the lookups built on them: who references what. Pure.

`handlers` registers the functions below with `@kopf.index`; Kopf keeps the resulting indexes
current from its watch streams. `dependents` answers "which Agents must be re-reconciled
because this Persona/Tool/Secret/Agent changed?" from those indexes, without API calls.
Keys are (kind, namespace, name) triples; values are Agent or Tool names.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from pydantic import ValidationError

from corral.api import groups
from corral.api.tools import ToolSpec
from corral.operator import errors, resolving

Key = tuple[str, str, str]
ReferenceIndex = Mapping[Key, Collection[str]]


def _identity(body: Mapping[str, Any]) -> tuple[str, str]:
    meta = body.get("metadata") or {}
    return str(meta.get("namespace") or "default"), str(meta.get("name"))


def agent_references(body: Mapping[str, Any]) -> dict[Key, str]:
    """Index an Agent under everything it references; an unparseable Agent under nothing."""
    namespace, name = _identity(body)
    try:
        agent = resolving.parse_agent(body)
    except errors.InvalidSpec:
        return {}
    return {(ref.kind, namespace, ref.name): name for ref in resolving.agent_references(agent.spec)}


def tool_references(body: Mapping[str, Any]) -> dict[Key, str]:
    """Index a Tool under the Secrets its headers use and the Agent it calls."""
    namespace, name = _identity(body)
    try:
        spec = ToolSpec.model_validate(body.get("spec") or {})
    except ValidationError:
        return {}
    return {(ref.kind, namespace, ref.name): name for ref in resolving.tool_references(spec)}


def by_namespace(body: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Index an object under its namespace, keeping what status refreshes need."""
    namespace, name = _identity(body)
    meta = body.get("metadata") or {}
    return {
        namespace: {
            "apiVersion": body.get("apiVersion", groups.API_VERSION),
            "kind": body.get("kind"),
            "metadata": {
                "name": name,
                "namespace": namespace,
                "uid": meta.get("uid"),
                "generation": meta.get("generation"),
            },
            "spec": body.get("spec") or {},
            "status": body.get("status") or {},
        }
    }


def dependents(
    kind: str,
    namespace: str,
    name: str,
    agents_by_reference: ReferenceIndex,
    tools_by_reference: ReferenceIndex,
) -> set[str]:
    """Names of the Agents in `namespace` whose children depend on the object."""
    direct = set(agents_by_reference.get((kind, namespace, name), ()))
    if kind not in ("Secret", groups.AGENT):
        return direct
    via_tools: set[str] = set()
    for tool in tools_by_reference.get((kind, namespace, name), ()):
        via_tools |= set(agents_by_reference.get((groups.TOOL, namespace, tool), ()))
    return direct | via_tools


def used_by(kind: str, namespace: str, name: str, agents_by_reference: ReferenceIndex) -> list[str]:
    """The Agents referencing a Persona or Tool directly, sorted."""
    return sorted(set(agents_by_reference.get((kind, namespace, name), ())))
