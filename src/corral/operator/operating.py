"""The running operator: shared clients, the Agent reconciler, reactions to related changes.

Does I/O. One `Operator` is built by the Kopf startup handler (`main.start`) and reached by
every handler through Kopf's memo. It turns events into work only when something the work
depends on really changed (`changes`): a Persona's or Tool's spec (its generation), a Secret's
data, the Personas/Tools an Agent references, an Agent appearing or going, a child written by
someone other than the operator. Then it reconciles exactly the Agents that depend on the
object and refreshes the status of exactly the Personas and Tools whose status may differ.
Status-only events, the operator's own status writes among them, cause nothing. The work runs
in the background, coalesced per object (`coalescing`), so an event handler returns at once.
Also runs the periodic drift check.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Mapping
from typing import Any

from corral.api import groups
from corral.operator import changes, coalescing, indexing, kube, mcpservers, referenced
from corral.operator.metrics import Metrics
from corral.operator.reconciling import ChildEvent, Reconciler, utcnow
from corral.operator.settings import OperatorSettings

log = logging.getLogger(__name__)

# What makes a Persona's or Tool's status worth recomputing, and what makes its users'
# children worth re-rendering. A listing at startup needs no reconcile: every Agent resumes.
REFRESH_ON = frozenset({changes.Change.LISTED, changes.Change.NEW, changes.Change.CHANGED})
RECONCILE_ON = frozenset({changes.Change.NEW, changes.Change.CHANGED, changes.Change.GONE})


@dataclasses.dataclass
class Operator:
    settings: OperatorSettings
    client: kube.Kube
    reconciler: Reconciler
    indexes: indexing.Indexes
    metrics: Metrics
    drift_task: asyncio.Task[None] | None = None
    discoveries: mcpservers.Discoveries | None = None  # issue 12: MCPServer status
    _versions: changes.Versions = dataclasses.field(default_factory=changes.Versions)
    _references: changes.References = dataclasses.field(default_factory=changes.References)
    _refreshes: coalescing.Coalescer[changes.Key] = dataclasses.field(
        default_factory=coalescing.Coalescer
    )

    def agent_changed(self, event_type: str | None, body: Mapping[str, Any]) -> None:
        """An Agent was listed, added, changed or deleted. Refresh the Personas and Tools whose
        `usedBy` this changes and, when the Agent came or went, the agent Tools calling it; when
        it was added or deleted, reconcile the Agents whose agent Tools call it. Its own status
        changes (most Agent events) cause nothing."""
        namespace, name = indexing.identity(body)
        gone = event_type == "DELETED"
        if gone:
            self.reconciler.forget(namespace, name)
        references = {} if gone else indexing.agent_references(body)
        usage = self._references.observe(namespace, name, event_type, references)
        for key in sorted(usage.stale):
            self._refresh(key)
        if usage.came_or_went:
            for tool in sorted(
                self.indexes.tools_by_reference.get((groups.AGENT, namespace, name), ())
            ):
                self._refresh((groups.TOOL, namespace, tool))
        if event_type in ("ADDED", "DELETED"):
            self._reconcile_dependents(groups.AGENT, namespace, name)

    def referenced_changed(
        self, kind: str, event_type: str | None, body: Mapping[str, Any]
    ) -> None:
        """A Persona or Tool event: only a new, changed (new generation) or deleted one matters."""
        namespace, name = indexing.identity(body)
        key = (kind, namespace, name)
        generation = str((body.get("metadata") or {}).get("generation") or 0)
        change = self._versions.observe(key, event_type, generation)
        if change in REFRESH_ON:
            self._refresh(key)
        elif change is changes.Change.GONE:
            self._refreshes.forget(key)
        if change in RECONCILE_ON:
            self._reconcile_dependents(kind, namespace, name)

    def secret_changed(
        self, event_type: str | None, namespace: str, name: str, data_digest: str
    ) -> None:
        """A Secret event: its users are reconciled only when its data changed."""
        change = self._versions.observe(("Secret", namespace, name), event_type, data_digest)
        if change in RECONCILE_ON:
            self._reconcile_dependents("Secret", namespace, name)
            # issue 12: an MCPServer whose headers use the Secret is discovered again with it
            users = self.indexes.mcp_servers_by_reference.get(("Secret", namespace, name), ())
            for server in sorted(users):
                self._refresh((groups.MCPSERVER, namespace, server))

    def child_changed(
        self,
        event_type: str | None,
        namespace: str,
        agent: str | None,
        kind: str,
        name: str,
        resource_version: str | None,
        body: Mapping[str, Any] | None = None,
    ) -> None:
        """An owned object changed (status, hand edit, deletion, or the operator's own write):
        the Agent's reconciler judges it (see `Reconciler.child_changed`). A modified
        Deployment goes with its body: its rollout may only move the Agent's status. The
        listing at startup is covered by the resume of every Agent."""
        if not agent or event_type is None:
            return
        rollout = kind == "Deployment" and event_type == "MODIFIED"
        # A plain copy of what is kept: Kopf may point its Body view at newer data meanwhile.
        deployment = dict(body) if rollout and body is not None else None
        event = ChildEvent(kind, name, resource_version, deployment)
        self.reconciler.child_changed(namespace, agent, event)

    async def drift_loop(self) -> None:
        """Every `drift_interval_seconds`, reconcile every known Agent and refresh every Persona
        and Tool status (each writes only what drifted)."""
        while True:
            await asyncio.sleep(self.settings.drift_interval_seconds)
            for kind in (groups.PERSONA, groups.TOOL):
                for namespace, name in self.indexes.names(kind):
                    self._refresh((kind, namespace, name))
            snapshot = {ns: sorted(names) for ns, names in self.indexes.agents_by_namespace.items()}
            for namespace, agents in snapshot.items():
                for name in agents:
                    await self.reconciler.trigger(namespace, name, "periodic drift check")

    async def join(self) -> None:
        """Wait until the reconciles and status refreshes started by events are done."""
        await self._refreshes.join()
        await self.reconciler.join()

    async def stop(self) -> None:
        if self.drift_task is not None:
            self.drift_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.drift_task
        if self.discoveries is not None:  # issue 12
            await self.discoveries.close()
        await self.reconciler.close()
        await self._refreshes.close()
        await self.client.close()

    def schedule_dependents(self, kind: str, namespace: str, name: str) -> None:
        """Reconcile the Agents that use the object (issue 12: an MCPServer's tools changed)."""
        self._reconcile_dependents(kind, namespace, name)

    def _reconcile_dependents(self, kind: str, namespace: str, name: str) -> None:
        found = indexing.dependents(
            kind,
            namespace,
            name,
            self.indexes.agents_by_reference,
            self.indexes.tools_by_reference,
            self.indexes.mcp_servers_by_reference,  # issue 12
        )
        for agent in sorted(found):
            self.reconciler.schedule(namespace, agent, f"{kind} {name!r} changed")

    def _refresh(self, key: changes.Key) -> None:
        if key[0] == groups.MCPSERVER:  # issue 12: discovery owns an MCPServer's status
            if self.discoveries is not None:
                self.discoveries.wake(key[1], key[2])
            return
        self._refreshes.spawn(key, lambda: self._refresh_throttled(key))

    async def _refresh_throttled(self, key: changes.Key) -> None:
        """Refresh now, then keep the object's turn for `status_refresh_interval_seconds`:
        the changes meanwhile (a burst of new Agents using it) share one refresh after that."""
        await self._refresh_now(key)
        await asyncio.sleep(self.settings.status_refresh_interval_seconds)

    async def _refresh_now(self, key: changes.Key) -> None:
        """Recompute a Persona's or Tool's status from the object as it is now (not from an
        event body, which may be older than the operator's last status write)."""
        kind, namespace, name = key
        try:
            body = await self.client.get(kube.path(groups.API_VERSION, kind, namespace, name))
            if body is None:
                return
            used_by = indexing.used_by(kind, namespace, name, self.indexes.agents_by_reference)
            agents = self.indexes.agent_names(namespace)
            written = await referenced.refresh(self.client, kind, body, used_by, agents, utcnow())
        except Exception as err:  # a status refresh must never break event handling
            self.metrics.errors.labels(kind=kind, reason=type(err).__name__).inc()
            log.warning("%s %s/%s: status not refreshed: %s", kind, namespace, name, err)
            return
        self.metrics.reconciles.labels(kind=kind, outcome="success").inc()
        if written:
            log.debug("%s %s/%s: status updated", kind, namespace, name)
