"""The reconcile of one Agent: resolve -> render -> apply -> status, as named steps.

Does I/O through `kube.Kube`. `Reconciler.reconcile` is the one idempotent reconcile used for
create, update and resume (via `handlers`); `trigger` (awaited, by the drift check) and
`schedule` (in the background, by `operating` for changes elsewhere: a Persona, Tool, Secret
or child) run the same reconcile, coalescing bursts and never raising. Reconciles of one Agent
never overlap. A failure is written to the status first and then raised as a domain error for
`handlers` to map. The resourceVersions of the children it writes are kept in `echoes`, so the
watch events of its own writes do not trigger another reconcile.

Watch events of children (`child_changed`) are judged when their run starts, after any
reconcile in progress has recorded its writes: the echo of the operator's own write needs
nothing. A Deployment's rollout moves its Agent's status several times (the Deployment
controller writes the Deployment's status as pods come up) while nothing else about the Agent
changes; such an event is handled without reading anything: when the last full reconcile
succeeded and the Deployment in the event still contains everything that reconcile applied,
the new status is computed from that Deployment and what the reconcile learned, and written if
it differs. Anything else (a hand edit, a failed last reconcile, a restarted operator) gets
the full reconcile.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import datetime
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from corral.api import groups
from corral.operator import (
    applying,
    changes,
    coalescing,
    errors,
    kube,
    naming,
    posting,
    resolving,
    statuses,
)
from corral.operator.metrics import Metrics
from corral.operator.rendering import children
from corral.operator.settings import OperatorSettings

log = logging.getLogger(__name__)
AgentKey = tuple[str, str]
TRANSIENT_RETRIES = 3


@dataclasses.dataclass(frozen=True)
class Known:
    """What the last successful full reconcile of an Agent established."""

    agent: Mapping[str, Any]
    """The Agent as read then (Events name it)."""
    seen: statuses.Observation
    status: dict[str, Any]
    """The Agent's status as last written (or found unchanged)."""
    deployment: Mapping[str, Any]
    """The Deployment as rendered: a live one containing all of it needs no apply."""


@dataclasses.dataclass(frozen=True)
class ChildEvent:
    """A watch event of one of an Agent's children, waiting for the Agent's next run."""

    kind: str
    name: str
    resource_version: str | None
    deployment: Mapping[str, Any] | None = None
    """The Deployment, for a modified Deployment (perhaps only its rollout progressed)."""


def utcnow() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclasses.dataclass
class Reconciler:
    client: kube.Kube
    settings: OperatorSettings
    metrics: Metrics
    clock: Callable[[], str] = utcnow
    reader: resolving.Reader | None = None
    """Where references are resolved from (Kopf's indexes in the operator); None: the API."""
    echoes: changes.Echoes = dataclasses.field(default_factory=changes.Echoes)
    _runs: coalescing.Coalescer[AgentKey] = dataclasses.field(default_factory=coalescing.Coalescer)
    _managed: dict[AgentKey, frozenset[str]] = dataclasses.field(default_factory=dict)
    _known: dict[AgentKey, Known] = dataclasses.field(default_factory=dict)
    _full: set[AgentKey] = dataclasses.field(default_factory=set)
    """Agents with a full reconcile requested and not started yet."""
    _children: dict[AgentKey, list[ChildEvent]] = dataclasses.field(default_factory=dict)
    """Child events not judged yet, per Agent."""

    async def reconcile(self, namespace: str, name: str) -> None:
        """Reconcile the Agent now; raises errors.OperatorError after recording it in status."""
        async with self._runs.lock((namespace, name)):
            await self._measured(namespace, name)

    async def trigger(self, namespace: str, name: str, why: str) -> None:
        """Reconcile because something else changed; a reconcile already waiting covers it.

        Never raises: failures are in the Agent's status already; transient API errors are
        retried a few times with backoff, after which the next event or drift check retries.
        """
        self._full.add((namespace, name))
        await self._runs.run((namespace, name), lambda: self._triggered(namespace, name, why))

    def schedule(self, namespace: str, name: str, why: str) -> None:
        """`trigger` in the background (for event handlers, which must not wait for it)."""
        self._full.add((namespace, name))
        self._runs.spawn((namespace, name), lambda: self._triggered(namespace, name, why))

    def child_changed(self, namespace: str, name: str, event: ChildEvent) -> None:
        """One of the Agent's children changed: in the background, nothing if it was the
        operator's own write, the Agent's status if a Deployment's rollout progressed, else a
        full reconcile."""
        self._children.setdefault((namespace, name), []).append(event)
        why = f"its {event.kind} changed"
        self._runs.spawn((namespace, name), lambda: self._triggered(namespace, name, why))

    async def join(self) -> None:
        """Wait until the reconciles running in the background are done."""
        await self._runs.join()

    async def close(self) -> None:
        """Cancel the reconciles running in the background."""
        await self._runs.close()

    async def _triggered(self, namespace: str, name: str, why: str) -> None:
        key = (namespace, name)
        # This run covers every request made before it started: a full reconcile if any asked
        # for one or a child changed in another way than a rollout, else a status update from
        # the newest Deployment seen, else (only echoes of our own writes) nothing.
        full = key in self._full
        self._full.discard(key)
        deployment: Mapping[str, Any] | None = None
        for event in self._children.pop(key, []):
            if self.echoes.is_echo((event.kind, namespace, event.name), event.resource_version):
                continue
            if event.deployment is None:
                full = True
            else:
                deployment = event.deployment
        if not full and (deployment is None or await self._rollout_only(key, deployment)):
            return
        log.debug("reconciling Agent %s/%s: %s", namespace, name, why)
        try:
            await self._with_retries(namespace, name)
        except errors.OperatorError as err:
            log.info("Agent %s/%s not reconciled (%s): %s", namespace, name, why, err)
        except Exception:
            log.exception("Agent %s/%s: reconcile after %s failed", namespace, name, why)

    async def _with_retries(self, namespace: str, name: str) -> None:
        for attempt in range(TRANSIENT_RETRIES + 1):
            try:
                await self._measured(namespace, name)
                return
            except (errors.ApiConflict, errors.ApiUnavailable):
                if attempt == TRANSIENT_RETRIES:
                    raise
                base, cap = self.settings.retry_base_seconds, self.settings.retry_max_seconds
                await asyncio.sleep(errors.backoff(attempt, base, cap))

    async def _rollout_only(self, key: AgentKey, deployment: Mapping[str, Any]) -> bool:
        """Update the Agent's status from its Deployment alone; False when a full reconcile
        is needed instead (nothing known, the Deployment drifted, or the write failed)."""
        known = self._known.get(key)
        if known is None or not applying.unchanged(known.deployment, deployment):
            return False
        seen = dataclasses.replace(
            known.seen, rollout=statuses.rollout(deployment, known.seen.config_hash)
        )
        status = statuses.agent_status(seen, known.status, self.clock())
        if status == known.status:
            return True
        namespace, name = key
        url = kube.path(groups.API_VERSION, groups.AGENT, namespace, name)
        try:
            await self.client.patch_status(
                groups.AGENT, url, statuses.merge_patch(known.status, status)
            )
        except errors.OperatorError as err:
            log.debug("Agent %s/%s: status from its rollout not written: %s", *key, err)
            self._known.pop(key, None)
            return False
        self._known[key] = dataclasses.replace(known, seen=seen, status=status)
        await self._post_events(known.agent, known.status, status, None)
        return True

    def forget(self, namespace: str, name: str) -> None:
        """The Agent is gone: drop its bookkeeping."""
        self._managed.pop((namespace, name), None)
        self._known.pop((namespace, name), None)
        self._full.discard((namespace, name))
        self._children.pop((namespace, name), None)
        self._runs.forget((namespace, name))
        self.echoes.forget(
            (kind, namespace, child)
            for kind, child in (
                ("ConfigMap", naming.configmap(name)),
                ("Service", naming.service(name)),
                ("Deployment", naming.deployment(name)),
                ("PodDisruptionBudget", naming.pdb(name)),
            )
        )
        self._update_managed_gauge()

    async def _measured(self, namespace: str, name: str) -> None:
        started = time.monotonic()
        outcome = "success"
        try:
            await self._reconcile(namespace, name)
        except errors.OperatorError as err:
            outcome = err.reason
            self.metrics.errors.labels(kind=groups.AGENT, reason=err.reason).inc()
            raise
        except Exception:
            outcome = "Error"
            self.metrics.errors.labels(kind=groups.AGENT, reason="Error").inc()
            raise
        finally:
            self.metrics.reconciles.labels(kind=groups.AGENT, outcome=outcome).inc()
            self.metrics.duration.labels(kind=groups.AGENT).observe(time.monotonic() - started)

    async def _reconcile(self, namespace: str, name: str) -> None:
        url = kube.path(groups.API_VERSION, groups.AGENT, namespace, name)
        body = await self.client.get(url)
        if body is None or (body.get("metadata") or {}).get("deletionTimestamp"):
            self.forget(namespace, name)
            return
        previous = dict(body.get("status") or {})
        # A reconcile that fails before the end leaves nothing known: rollout events then
        # reconcile in full.
        self._known.pop((namespace, name), None)
        try:
            seen, applied, deployment = await self._observe(body)
        except Exception:
            await self._initial_status(url, body)
            raise
        status = statuses.agent_status(seen, previous, self.clock())
        if status != previous:
            await self.client.patch_status(
                groups.AGENT, url, statuses.merge_patch(previous, status)
            )
        if seen.failure is None and deployment is not None:
            self._known[(namespace, name)] = Known(body, seen, status, deployment)
        await self._post_events(body, previous, status, applied)
        if seen.failure is not None:
            raise seen.failure

    async def _initial_status(self, url: str, body: Mapping[str, Any]) -> None:
        """The first visit of an Agent failed before it had a status (an API error, while Kopf
        retries): set Ready=Unknown, so the Agent shows a status meanwhile. Best effort; a
        successful first visit writes its status once, at the end."""
        previous = dict(body.get("status") or {})
        generation = int((body.get("metadata") or {}).get("generation") or 0)
        initial = statuses.initial_agent_status(generation, previous, self.clock())
        if initial is None:
            return
        with contextlib.suppress(errors.OperatorError):
            await self.client.patch_status(
                groups.AGENT, url, statuses.merge_patch(previous, initial)
            )

    async def _observe(
        self, body: Mapping[str, Any]
    ) -> tuple[statuses.Observation, applying.Applied | None, dict[str, Any] | None]:
        """Resolve, render and apply; what happened, as an Observation for the status, with
        what was applied and the Deployment as rendered (None when it failed)."""
        meta = body.get("metadata") or {}
        namespace, name = str(meta.get("namespace")), str(meta.get("name"))
        generation = int(meta.get("generation") or 0)
        try:
            reader = self.reader or kube.ApiReader(self.client)
            resolved = await resolving.resolve(body, reader)
        except (errors.MissingReference, errors.InvalidSpec) as err:
            resolved_ok = False if isinstance(err, errors.MissingReference) else None
            return await self._failed(namespace, name, generation, err, resolved_ok), None, None
        try:
            desired = children.render(resolved, self.settings)
            # Known from this Agent's last apply: no budget of its own is left to delete.
            last = self._managed.get((namespace, name))
            no_pdb = last is not None and "PodDisruptionBudget" not in last
            uid = str(meta.get("uid"))
            applied = await applying.apply_children(self.client, desired, uid, no_pdb)
        except (errors.InvalidSpec, errors.NameConflict) as err:
            return await self._failed(namespace, name, generation, err, True), None, None
        for kind in applied.written:
            child = applied.live[kind].get("metadata") or {}
            key = (kind, namespace, str(child.get("name")))
            self.echoes.wrote(key, child.get("resourceVersion"))
        self._managed[(namespace, name)] = frozenset([groups.AGENT, *applied.live])
        self._update_managed_gauge()
        seen = statuses.Observation(
            generation=generation,
            references_resolved=True,
            rollout=statuses.rollout(applied.live.get("Deployment"), desired.config_hash),
            endpoint=naming.endpoint(name, namespace),
            config_hash=desired.config_hash,
            mcp_not_offered=resolved.not_offered if resolved.mcp_servers else None,  # issue 12
        )
        return seen, applied, desired.deployment

    async def _failed(
        self,
        namespace: str,
        name: str,
        generation: int,
        failure: errors.OperatorError,
        resolved_ok: bool | None,
    ) -> statuses.Observation:
        # Children stay as they were; report the replica counts of what is running.
        deployment = await self.client.get(
            kube.path("apps/v1", "Deployment", namespace, naming.deployment(name))
        )
        return statuses.Observation(
            generation=generation,
            failure=failure,
            references_resolved=resolved_ok,
            rollout=statuses.rollout(deployment, None) if deployment is not None else None,
        )

    async def _post_events(
        self,
        body: Mapping[str, Any],
        previous: Mapping[str, Any],
        status: Mapping[str, Any],
        applied: applying.Applied | None,
    ) -> None:
        now, instance = self.clock(), self.settings.reporting_instance
        meta = body.get("metadata") or {}
        events: list[tuple[posting.EventType, str, str]] = []
        change = applying.change_event(applied) if applied is not None else None
        if change is not None:
            events.append(("Normal", *change))
        transition = statuses.transition_event(previous, status)
        if transition is not None and not (change and transition[1] == "RollingOut"):
            events.append(transition)
        for type_, reason, message in events:
            log.info(
                "Agent %s/%s: %s: %s", meta.get("namespace"), meta.get("name"), reason, message
            )
            event = posting.event(body, type_, reason, message, now=now, instance=instance)
            await posting.post(self.client, event)

    def _update_managed_gauge(self) -> None:
        counts = collections.Counter(kind for kinds in self._managed.values() for kind in kinds)
        for kind in (groups.AGENT, "ConfigMap", "Service", "Deployment", "PodDisruptionBudget"):
            self.metrics.managed.labels(kind=kind).set(counts.get(kind, 0))
