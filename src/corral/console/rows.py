"""Registry rows from Corral objects, and the registry's filters. Pure.

Called by the registry page and by its live stream (`watching`) so a row looks the same
whether it was listed or arrived by a watch. `now` is passed in: nothing here reads a clock.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Mapping
from typing import Any

from corral.console import kinds

UNKNOWN = "Unknown"


@dataclasses.dataclass(frozen=True)
class Readiness:
    status: str  # True | False | Unknown
    reason: str
    message: str


@dataclasses.dataclass(frozen=True)
class Row:
    """One object in the registry table."""

    kind: str
    namespace: str
    name: str
    ready: Readiness
    model: str
    replicas: str
    endpoint: str
    age: str
    link: str | None

    @property
    def key(self) -> str:
        """A stable DOM id: kinds, namespaces and names are DNS labels or subdomains."""
        return f"row-{self.kind.lower()}-{self.namespace}-{self.name}"


@dataclasses.dataclass(frozen=True)
class Filters:
    """What the user asked the registry to show; empty strings mean no filter."""

    kind: str = ""  # a plural (agents, personas, tools, mcpservers)
    namespace: str = ""
    ready: str = ""  # "true" | "false" | ""
    text: str = ""

    @classmethod
    def from_query(cls, query: Mapping[str, str]) -> Filters:
        kind = query.get("kind", "")
        ready = query.get("ready", "").lower()
        return cls(
            kind=kind if kind in kinds.BY_PLURAL else "",
            namespace=query.get("namespace", "").strip(),
            ready=ready if ready in ("true", "false") else "",
            text=query.get("q", "").strip(),
        )

    def kinds(self) -> tuple[kinds.Kind, ...]:
        return (kinds.BY_PLURAL[self.kind],) if self.kind else kinds.REGISTRY

    def matches(self, row: Row) -> bool:
        if self.namespace and row.namespace != self.namespace:
            return False
        if self.ready == "true" and row.ready.status != "True":
            return False
        if self.ready == "false" and row.ready.status == "True":
            return False
        if self.text:
            needle = self.text.lower()
            haystack = (row.name, row.ready.reason, row.ready.message, row.model, row.endpoint)
            return any(needle in part.lower() for part in haystack)
        return True


def readiness(obj: Mapping[str, Any]) -> Readiness:
    """The object's Ready condition, as Unknown while it describes an older generation."""
    status = obj.get("status") or {}
    conditions = status.get("conditions") or []
    ready = next((c for c in conditions if c.get("type") == "Ready"), None)
    if ready is None:
        return Readiness(UNKNOWN, "Pending", "the operator has not reported on it yet")
    generation = (obj.get("metadata") or {}).get("generation")
    observed = ready.get("observedGeneration", status.get("observedGeneration"))
    if generation is not None and observed is not None and observed < generation:
        return Readiness(
            UNKNOWN,
            "Reconciling",
            f"the status describes generation {observed}; the spec is at {generation}",
        )
    return Readiness(
        str(ready.get("status", UNKNOWN)),
        str(ready.get("reason", "")),
        str(ready.get("message", "")),
    )


def row(obj: Mapping[str, Any], now: datetime.datetime) -> Row:
    """The registry row of a Corral object (any kind of `kinds.REGISTRY`)."""
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    kind = str(obj.get("kind", ""))
    namespace, name = str(meta.get("namespace", "")), str(meta.get("name", ""))
    model = replicas = endpoint = ""
    link: str | None = None
    if kind == kinds.AGENT.kind:
        model = str((spec.get("model") or {}).get("name", ""))
        desired = status.get("replicas", spec.get("replicas"))
        replicas = f"{status.get('readyReplicas') or 0}/{desired if desired is not None else '?'}"
        endpoint = str(status.get("endpoint") or "")
        link = f"/agents/{namespace}/{name}"
    elif kind == kinds.TOOL.kind:
        http, agent = spec.get("http") or {}, spec.get("agent") or {}
        endpoint = f"{http.get('method', 'GET')} {http['url']}" if http.get("url") else ""
        endpoint = endpoint or (f"agent {agent['name']}" if agent.get("name") else "")
    elif kind == kinds.MCPSERVER.kind:
        endpoint = str(spec.get("url", ""))
        tools = status.get("tools")
        model = f"{len(tools)} tools" if isinstance(tools, list) else ""
    if kind in (kinds.PERSONA.kind, kinds.TOOL.kind):
        link = f"/author/{kinds.BY_KIND[kind].plural}/{namespace}/{name}"
    return Row(
        kind=kind,
        namespace=namespace,
        name=name,
        ready=readiness(obj),
        model=model,
        replicas=replicas,
        endpoint=endpoint,
        age=age(meta.get("creationTimestamp"), now),
        link=link,
    )


def age(created: str | None, now: datetime.datetime) -> str:
    """`kubectl get`'s AGE: 45s, 12m, 5h, 3d (from an RFC 3339 creationTimestamp)."""
    if not created:
        return ""
    try:
        then = datetime.datetime.fromisoformat(created.replace("Z", "+00:00"))
    except ValueError:
        return ""
    seconds = max(0, int((now - then).total_seconds()))
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 2 * 3600:
        return f"{seconds // 60}m"
    if seconds < 2 * 86400:
        return f"{seconds // 3600}h"
    return f"{seconds // 86400}d"


def sort_key(r: Row) -> tuple[int, str, str]:
    order = [k.kind for k in kinds.REGISTRY]
    return (order.index(r.kind) if r.kind in order else len(order), r.namespace, r.name)
