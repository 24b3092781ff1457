"""The running operator: shared clients, the Agent reconciler, reactions to related changes.

Does I/O. One `Operator` is built by the Kopf startup handler (`start`) and reached by every
handler through Kopf's memo. It turns "something changed" (a Persona, Tool, Secret, child
object or another Agent) into reconciles of exactly the Agents that depend on it, keeps
Persona/Tool status current, and runs the periodic drift check.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Collection, Mapping
from typing import Any

from corral.api import groups
from corral.operator import indexing, kube, referenced
from corral.operator.metrics import Metrics
from corral.operator.reconciling import Reconciler, utcnow
from corral.operator.settings import OperatorSettings

log = logging.getLogger(__name__)

NamespaceIndex = Mapping[str, Collection[Mapping[str, Any]]]


@dataclasses.dataclass(frozen=True)
class Indexes:
    """Kopf's live indexes (see `handlers` for the index functions)."""

    agents_by_reference: indexing.ReferenceIndex
    tools_by_reference: indexing.ReferenceIndex
    agents_by_namespace: NamespaceIndex
    personas_by_namespace: NamespaceIndex
    tools_by_namespace: NamespaceIndex

    def agent_names(self, namespace: str) -> set[str]:
        return {obj["metadata"]["name"] for obj in self.agents_by_namespace.get(namespace, ())}


@dataclasses.dataclass
class Operator:
    settings: OperatorSettings
    client: kube.Kube
    reconciler: Reconciler
    indexes: Indexes
    metrics: Metrics
    drift_task: asyncio.Task[None] | None = None

    async def agent_changed(self, event_type: str | None, namespace: str, name: str) -> None:
        """An Agent was added, changed or deleted: update Persona/Tool usage and readiness,
        and re-reconcile Agents whose Tools call this one."""
        if event_type == "DELETED":
            self.reconciler.forget(namespace, name)
        await self.refresh_referenced(namespace)
        for agent in self._dependents(groups.AGENT, namespace, name):
            await self.reconciler.trigger(namespace, agent, f"Agent {name!r} changed")

    async def referenced_changed(
        self, kind: str, event_type: str | None, body: Mapping[str, Any]
    ) -> None:
        """A Persona or Tool changed: refresh its status, re-reconcile the Agents using it."""
        meta = body.get("metadata") or {}
        namespace, name = str(meta.get("namespace")), str(meta.get("name"))
        if event_type != "DELETED":
            await self._refresh_one(kind, body)
        for agent in self._dependents(kind, namespace, name):
            await self.reconciler.trigger(namespace, agent, f"{kind} {name!r} changed")

    async def secret_changed(self, namespace: str, name: str) -> None:
        for agent in self._dependents("Secret", namespace, name):
            await self.reconciler.trigger(namespace, agent, f"Secret {name!r} changed")

    async def child_changed(self, namespace: str, agent: str | None, kind: str) -> None:
        """An owned object changed (status, hand edit, deletion): reconcile its Agent."""
        if agent:
            await self.reconciler.trigger(namespace, agent, f"its {kind} changed")

    async def refresh_referenced(self, namespace: str) -> None:
        """Bring every Persona/Tool status in the namespace up to date (writes only changes)."""
        for kind, index in (
            (groups.PERSONA, self.indexes.personas_by_namespace),
            (groups.TOOL, self.indexes.tools_by_namespace),
        ):
            for body in list(index.get(namespace, ())):
                await self._refresh_one(kind, body)

    async def drift_loop(self) -> None:
        """Every `drift_interval_seconds`, reconcile every known Agent (writes only drift)."""
        while True:
            await asyncio.sleep(self.settings.drift_interval_seconds)
            snapshot = {ns: list(objs) for ns, objs in self.indexes.agents_by_namespace.items()}
            for namespace, agents in snapshot.items():
                for agent in agents:
                    name = agent["metadata"]["name"]
                    await self.reconciler.trigger(namespace, name, "periodic drift check")

    async def stop(self) -> None:
        if self.drift_task is not None:
            self.drift_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.drift_task
        await self.client.close()

    def _dependents(self, kind: str, namespace: str, name: str) -> list[str]:
        return sorted(
            indexing.dependents(
                kind,
                namespace,
                name,
                self.indexes.agents_by_reference,
                self.indexes.tools_by_reference,
            )
        )

    async def _refresh_one(self, kind: str, body: Mapping[str, Any]) -> None:
        meta = body.get("metadata") or {}
        namespace, name = str(meta.get("namespace")), str(meta.get("name"))
        used_by = indexing.used_by(kind, namespace, name, self.indexes.agents_by_reference)
        try:
            written = await referenced.refresh(
                self.client, kind, body, used_by, self.indexes.agent_names(namespace), utcnow()
            )
        except Exception as err:  # a status refresh must never break event handling
            self.metrics.errors.labels(kind=kind, reason=type(err).__name__).inc()
            log.warning("%s %s/%s: status not refreshed: %s", kind, namespace, name, err)
            return
        self.metrics.reconciles.labels(kind=kind, outcome="success").inc()
        if written:
            log.debug("%s %s/%s: status updated", kind, namespace, name)
