"""Builders and in-memory fakes for the operator's unit tests (no cluster).

`FakeKube` stands in for `corral.operator.kube.Kube`: objects live in a dict keyed by URL
path, server-side apply replaces the owned fields and bumps resourceVersion/generation like
the API server, and every write is recorded so tests can assert "zero writes".
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import functools
import itertools
from collections.abc import Callable
from typing import Any

from corral.api import groups
from corral.operator import errors, hashing, indexing, kinds, kube, naming, settings, watching

NAMESPACE = "shop"
_uids = itertools.count(1)


def make_settings(**overrides: Any) -> settings.OperatorSettings:
    """Settings independent of the environment (every field the renderers read is explicit)."""
    values: dict[str, Any] = {
        "image": "registry.test/corral:1.2.3",
        "image_pull_policy": "IfNotPresent",
        "run_as_user": 65532,
        "drain_seconds": 25,
        "termination_grace_seconds": 35,
        "pod_disruption_budgets": True,
        "reporting_instance": "unit-test",
        "status_refresh_interval_seconds": 0,
        "first_status_delay_seconds": 0,
        "default_resources": {
            "requests": {"cpu": "100m", "memory": "128Mi"},
            "limits": {"memory": "512Mi"},
        },
    }
    return settings.OperatorSettings(**(values | overrides))


def agent(
    name: str = "support", uid: str | None = "uid-support", generation: int = 1, **spec: Any
) -> dict[str, Any]:
    body_spec = {"model": {"provider": "openai", "name": "gpt-4o-mini"}} | spec
    meta: dict[str, Any] = {"name": name, "namespace": NAMESPACE, "generation": generation}
    if uid is not None:
        meta["uid"] = uid
    return {"apiVersion": groups.API_VERSION, "kind": "Agent", "metadata": meta, "spec": body_spec}


def persona(name: str = "support-tone", **spec: Any) -> dict[str, Any]:
    body_spec = {"systemPrompt": "You are a concise, friendly support engineer."} | spec
    return {
        "apiVersion": groups.API_VERSION,
        "kind": "Persona",
        "metadata": {"name": name, "namespace": NAMESPACE, "generation": 1},
        "spec": body_spec,
    }


def http_tool(name: str = "order-lookup", **http: Any) -> dict[str, Any]:
    return {
        "apiVersion": groups.API_VERSION,
        "kind": "Tool",
        "metadata": {"name": name, "namespace": NAMESPACE, "generation": 1},
        "spec": {
            "description": "Look up an order by id",
            "parameters": {
                "type": "object",
                "properties": {"order_id": {"type": "string"}},
                "required": ["order_id"],
            },
            "http": {"url": "http://orders.shop.svc:8080/orders/{order_id}"} | http,
        },
    }


def agent_tool(name: str, target: str) -> dict[str, Any]:
    return {
        "apiVersion": groups.API_VERSION,
        "kind": "Tool",
        "metadata": {"name": name, "namespace": NAMESPACE, "generation": 1},
        "spec": {"description": f"Ask {target}", "agent": {"name": target}},
    }


@dataclasses.dataclass
class FakeReader:
    """`resolving.Reader` over dicts; secrets map (name, key) -> value."""

    personas: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    tools: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    agents: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    secrets: dict[tuple[str, str], str] = dataclasses.field(default_factory=dict)
    mcp_servers: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)

    async def mcp_server(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.mcp_servers.get(name)

    async def persona(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.personas.get(name)

    async def tool(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.tools.get(name)

    async def agent(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.agents.get(name)

    async def secret_digest(self, namespace: str, name: str, key: str) -> str | None:
        value = self.secrets.get((name, key))
        return None if value is None else hashing.secret_digest(namespace, name, key, value)


@dataclasses.dataclass
class FakeKube:
    """In-memory stand-in for `kube.Kube` (same method names and error behaviour)."""

    objects: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    writes: list[tuple[str, str, str]] = dataclasses.field(default_factory=list)
    reads: list[str] = dataclasses.field(default_factory=list)
    events: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    fail_next: list[Exception] = dataclasses.field(default_factory=list)
    """Errors the next applies raise, as the API server would under contention."""
    on_apply: Callable[[dict[str, Any]], None] | None = None
    """Called with each applied object (to deliver its watch event at that moment)."""
    _versions: itertools.count[int] = dataclasses.field(default_factory=lambda: itertools.count(1))

    def put(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Store an object as if created by someone else (no write recorded)."""
        stored = copy.deepcopy(obj)
        meta = stored.setdefault("metadata", {})
        meta.setdefault("uid", f"uid-{next(_uids)}")
        meta.setdefault("generation", 1)
        meta["resourceVersion"] = str(next(self._versions))
        self.objects[kube.path_of(stored)] = stored
        return stored

    def at(self, url: str) -> dict[str, Any]:
        return self.objects[url]

    def touch(self, url: str) -> dict[str, Any]:
        """A write by someone else (a controller): the object gets a new resourceVersion."""
        obj = self.objects[url]
        obj["metadata"]["resourceVersion"] = str(next(self._versions))
        return obj

    async def get(self, url: str) -> dict[str, Any] | None:
        await asyncio.sleep(0)  # yield like a real request, so concurrent reconciles interleave
        self.reads.append(url)
        obj = self.objects.get(url)
        return copy.deepcopy(obj) if obj is not None else None

    async def apply(
        self, manifest: dict[str, Any], force: bool = True, manager: str = naming.MANAGER
    ) -> dict[str, Any]:
        """Server-side apply, roughly: the manifest replaces the object (a handover by another
        manager only sets `spec.replicas`); unforced, an object no apply of `corral` made is
        a conflict, as fields another manager set would be."""
        if self.fail_next:
            raise self.fail_next.pop(0)
        url = kube.path_of(manifest)
        self.writes.append(("apply", manifest["kind"], url))
        current = self.objects.get(url)
        if manager != naming.MANAGER:
            assert current is not None
            current["spec"]["replicas"] = manifest["spec"]["replicas"]
            current["metadata"].setdefault("managedFields", []).append({"manager": manager})
            current["metadata"]["resourceVersion"] = str(next(self._versions))
            return copy.deepcopy(current)
        owners = [
            e["manager"] for e in (current or {}).get("metadata", {}).get("managedFields", [])
        ]
        if current is not None and not force and naming.MANAGER not in owners:
            raise errors.ApiConflict(f"PATCH {url}: 409 conflict with another manager")
        applied = copy.deepcopy(manifest)
        meta = applied["metadata"]
        if current is None:
            meta |= {"uid": f"uid-{next(_uids)}", "generation": 1}
        else:
            old = current["metadata"]
            changed = applied.get("spec") != current.get("spec")
            meta |= {"uid": old["uid"], "generation": old["generation"] + int(changed)}
            if "status" in current:
                applied["status"] = current["status"]
            replicas = (current.get("spec") or {}).get("replicas")
            kept = "corral-handover" in owners or "hpa" in owners
            if "replicas" not in applied.get("spec", {}) and replicas is not None and kept:
                applied["spec"]["replicas"] = replicas
        spec_fields = {"f:replicas": {}} if "replicas" in applied.get("spec", {}) else {}
        others = [
            e
            for e in (current or {}).get("metadata", {}).get("managedFields", [])
            if e["manager"] != naming.MANAGER
        ]
        meta["managedFields"] = [
            {"manager": naming.MANAGER, "operation": "Apply", "fieldsV1": {"f:spec": spec_fields}},
            *others,
        ]
        meta["resourceVersion"] = str(next(self._versions))
        self.objects[url] = applied
        if self.on_apply is not None:
            self.on_apply(copy.deepcopy(applied))
        return copy.deepcopy(applied)

    async def patch_status(self, kind: str, url: str, status: dict[str, Any]) -> dict[str, Any]:
        self.writes.append(("patch-status", kind, url))
        obj = self.objects.get(url)
        if obj is None:
            raise kube.NotFound(f"PATCH {url}/status: 404")
        merged = {**obj.get("status", {}), **status}
        obj["status"] = {k: v for k, v in merged.items() if v is not None}
        obj["metadata"]["resourceVersion"] = str(next(self._versions))
        return copy.deepcopy(obj)

    async def delete(self, kind: str, url: str) -> None:
        self.writes.append(("delete", kind, url))
        self.objects.pop(url, None)

    async def create(self, kind: str, url: str, obj: dict[str, Any]) -> None:
        self.writes.append(("create", kind, url))
        if kind == "Event":
            self.events.append(copy.deepcopy(obj))


def cache(api: FakeKube) -> indexing.Indexes:
    """The watch cache over the in-memory API: Kopf's indexes are the index functions applied
    to every object (plain data; nothing of Kopf is simulated); the Agents are in the operator's
    own cache (`watching.Agents`)."""
    functions: dict[str, list[tuple[str, Callable[[dict[str, Any]], dict[Any, Any]]]]] = {
        **{
            r.kind: [
                (r.index, indexing.by_name),
                *(
                    [(r.by_reference_index, functools.partial(indexing.named_by, r))]
                    if r.references
                    else []
                ),
            ]
            for r in indexing.REFERENCED
        },
        "Secret": [("secrets", indexing.secret_digests)],
        **{child.kind: [(child.kind, indexing.child_by_agent)] for child in kinds.CHILDREN},
    }
    maps: dict[str, dict[Any, list[Any]]] = {
        name: {} for name in (*indexing.INDEXES, *(child.kind for child in kinds.CHILDREN))
    }
    agents = watching.Agents()
    for obj in api.objects.values():
        if obj["kind"] == "Agent":
            agents.put(obj)
        for index, function in functions.get(obj["kind"], []):
            for key, value in function(obj).items():
                maps[index].setdefault(key, []).append(value)
    children = {child.kind: maps[child.kind] for child in kinds.CHILDREN}
    return indexing.Indexes.of(maps, agents.bodies, agents.names, children)


def observed(api: FakeKube, agent: str = "support") -> dict[str, dict[str, Any] | None]:
    """Kind -> the Agent's child as the watch cache holds it."""
    indexes = cache(api)
    return {
        child.kind: dict(body) if (body := indexes.child(child.kind, NAMESPACE, agent)) else None
        for child in kinds.CHILDREN
    }
