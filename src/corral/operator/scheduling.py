"""The scheduler: watch events in, runs out. Owns the work queue and the per-object records.

Does I/O only through the `Reconciler` it runs. Kopf's event handlers (`handlers`) and the
operator's own watches of the Agents and their children (`watching`) tell it what they saw; it
decides what became due: an Agent whose spec changed or whose child changed in a
way the operator did not write itself, the Agents depending on a Persona, Tool, Secret or agent
Tool's target that changed (their version, not their status), the Personas and Tools whose
`usedBy` may differ, the MCPServers to discover again (their spec, a Secret of their headers or
the Agents using them changed). `lead` runs the due work, a bounded number of runs at once,
while this process leads (`electing`); a standby keeps its queue and its cache warm and writes
nothing. Every run returns a `reconciling.Outcome`, recorded here and only here: the writes the
cache has yet to show, the Agent's references, the failure count behind the backoff
(`errors.retry_delay`, the one retry path), and when the key is due next (the periodic drift
check). An MCPServer's status is its discovery's (`mcpservers.Discoveries`, one task per
server): a due MCPServer wakes its discovery, which runs only while `lead` runs, and its own
timer replaces the drift check.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from corral.api import groups
from corral.operator import errors, indexing, mcpservers, naming, queueing
from corral.operator.reconciling import Outcome, Reconciler
from corral.operator.settings import OperatorSettings

log = logging.getLogger(__name__)
REFERENCED = frozenset(indexing.BY_REFERENCED)


@dataclasses.dataclass
class Scheduler:
    settings: OperatorSettings
    reconciler: Reconciler
    indexes: indexing.Indexes
    discoveries: mcpservers.Discoveries | None = None
    observed: Callable[[], Awaitable[None]] | None = None
    """Awaited before the first run: returns once every cache holds its first listing (Kopf's
    indexes and `watching`'s caches; `starting`), so no run takes an object not listed yet
    for a missing one."""
    clock: Callable[[], float] = time.monotonic
    records: dict[queueing.Key, queueing.Record] = dataclasses.field(default_factory=dict)
    queue: queueing.Queue = dataclasses.field(init=False)
    _wake: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self.queue = queueing.Queue(clock=self.clock)

    # --- what the watch events say -----------------------------------------------------------

    def seen(self, kind: str, event_type: str | None, body: Mapping[str, Any]) -> None:
        """What the operator's own watches (`watching`) saw: an Agent or one of its children."""
        if kind == groups.AGENT:
            self.agent_seen(event_type, body)
        else:
            self.child_seen(kind, event_type, body)

    def agent_seen(self, event_type: str | None, body: Mapping[str, Any]) -> None:
        """An Agent was listed, added, changed or deleted."""
        namespace, name = indexing.identity(body)
        key = (groups.AGENT, namespace, name)
        if event_type == "DELETED":
            gone = self._drop(key)
            self._schedule(*(gone.references if gone else ()))
            self._target_changed(namespace, name)
            return
        record, new = self._record(key)
        if record.seen(groups.AGENT, body):
            return
        generation = str((body.get("metadata") or {}).get("generation"))
        deleting = bool((body.get("metadata") or {}).get("deletionTimestamp"))
        if new or deleting or generation != record.version:
            record.version = generation
            self._schedule(key)
        if new and event_type is not None:
            self._target_changed(namespace, name)

    def referenced_seen(self, kind: str, event_type: str | None, body: Mapping[str, Any]) -> None:
        """A Persona, Tool or MCPServer was listed, added, changed or deleted."""
        namespace, name = indexing.identity(body)
        key = (kind, namespace, name)
        if kind == groups.MCPSERVER and self.discoveries is not None:
            self.discoveries.observe(event_type, body)
        if event_type == "DELETED":
            self._drop(key)
            self._dependents_changed(kind, namespace, name)
            return
        record, new = self._record(key)
        if record.seen(kind, body):
            return
        generation = str((body.get("metadata") or {}).get("generation"))
        if new or generation != record.version:
            changed = record.version is not None or event_type is not None
            record.version = generation
            self._schedule(key)
            if changed:
                self._dependents_changed(kind, namespace, name)

    def secret_seen(self, event_type: str | None, namespace: str, name: str, digest: str) -> None:
        """A Secret event, its data reduced to `digest`: only a change of the data matters."""
        key = ("Secret", namespace, name)
        if event_type == "DELETED":
            if self._drop(key) is not None:
                self._dependents_changed("Secret", namespace, name)
            return
        if key not in self.records and event_type is None:
            self._record(key)[0].version = digest  # listed: every Agent resumes anyway
            return
        record, _ = self._record(key)
        if digest != record.version:
            record.version = digest
            self._dependents_changed("Secret", namespace, name)
            # An MCPServer whose headers use the Secret is discovered again with it.
            referrers = self.indexes.referrers("Secret", namespace, name)
            self._schedule(*((k, namespace, n) for k, n in referrers if k == groups.MCPSERVER))

    def tools_changed(self, namespace: str, name: str) -> None:
        """An MCPServer's discovery listed other tool names: its Agents check their allow-lists
        again (`mcpservers.Discoveries` tells this from the server's watch events)."""
        self._dependents_changed(groups.MCPSERVER, namespace, name)

    def child_seen(self, kind: str, event_type: str | None, body: Mapping[str, Any]) -> None:
        """An Agent's child changed: anything but the echo of our own write is the Agent's
        business (a hand edit, a deletion, a rollout moving the Agent's status)."""
        agent = ((body.get("metadata") or {}).get("labels") or {}).get(naming.AGENT_LABEL)
        if not agent or event_type is None:
            return  # the listing at startup: every Agent resumes anyway
        namespace, _ = indexing.identity(body)
        key = (groups.AGENT, namespace, str(agent))
        record = self.records.get(key)
        if record is not None:
            if event_type == "DELETED":
                record.gone(kind)
            elif record.seen(kind, body):
                return
        self._schedule(key)

    # --- running ---------------------------------------------------------------------------

    async def lead(self) -> None:
        """Run the due work and the MCPServers' discovery until cancelled (while this process
        leads): each due key in a task of its own, at most `workers` at once. One loop waits
        for the next due key, so an event wakes one coroutine, not every idle worker."""
        if self.observed is not None:
            await self.observed()
        if self.discoveries is not None:
            self.discoveries.start()
        slots = asyncio.Semaphore(self.settings.workers)
        try:
            async with asyncio.TaskGroup() as runs:
                while True:
                    await slots.acquire()
                    key = self.queue.pop()
                    while key is None:
                        await self._idle()
                        key = self.queue.pop()
                    runs.create_task(self._run(key, slots), name=f"corral-run-{key[0]}")
        finally:
            if self.discoveries is not None:
                await self.discoveries.close()

    async def _run(self, key: queueing.Key, slots: asyncio.Semaphore) -> None:
        """One run of `key`. A failing run never stops the others: a reconcile reports its
        own failures in its outcome, so an exception here is a bug, logged and retried. A run
        cancelled with `lead` (this process stopped leading) stays due, so it is not left for
        the next watch event of its object."""
        try:
            self.queue.done(key, *await self._visit(key))
        except asyncio.CancelledError:
            self.queue.done(key, 0.0)  # leading stopped mid-run: first again when it resumes
            raise
        except Exception:
            log.exception("%s %s/%s: the run failed; retrying", *key)
            self.queue.done(key, self.settings.retry_base_seconds)
        finally:
            slots.release()
            self._wake.set()

    async def _visit(self, key: queueing.Key) -> tuple[float | None, float]:
        record = self.records.get(key)
        if record is None:
            return None, 0.0
        if key[0] == groups.MCPSERVER:
            if self.discoveries is not None:
                self.discoveries.wake(key[1], key[2])
            return None, 0.0  # its discovery keeps its own time
        if key[0] == groups.AGENT:
            outcome = await self.reconciler.agent(key, record)
        else:
            outcome = await self.reconciler.referenced(key, record)
        return self.record(key, outcome)

    async def _idle(self) -> None:
        due = self.queue.next_due()
        timeout = None if due is None else max(0.0, due - self.clock())
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout)

    def record(self, key: queueing.Key, outcome: Outcome) -> tuple[float | None, float]:
        """Keep what the run of `key` learned; (requeue after, hold) for the queue."""
        record = self.records.get(key)
        if record is None:
            return None, 0.0
        if outcome.gone:
            self._drop(key)
            return None, 0.0
        record.written.update(outcome.written)
        record.held_since = outcome.held_since
        if outcome.memo is not None:
            record.memo = outcome.memo
        if outcome.references is not None and outcome.references != record.references:
            self._schedule(*(record.references ^ outcome.references))
            record.references = outcome.references
        hold = 0.0
        if key[0] in REFERENCED and outcome.written:
            hold = self.settings.status_refresh_interval_seconds
        if outcome.error is None:
            record.failures = 0
            due = self._drift_interval(key)
            return (due if outcome.recheck_after is None else min(due, outcome.recheck_after)), hold
        s = self.settings
        delay = errors.retry_delay(
            outcome.error, record.failures, s.retry_base_seconds, s.retry_max_seconds
        )
        record.failures += 1
        log.info("%s %s/%s not reconciled: %s", *key, outcome.error)
        return (self._drift_interval(key) if delay is None else delay), hold

    def _drift_interval(self, key: queueing.Key) -> float:
        """The drift check interval, spread by up to 10% per key so checks do not bunch up."""
        spread = (hash(key) % 1000) / 10000
        return self.settings.drift_interval_seconds * (1 + spread)

    # --- bookkeeping -------------------------------------------------------------------------

    def _record(self, key: queueing.Key) -> tuple[queueing.Record, bool]:
        record = self.records.get(key)
        if record is not None:
            return record, False
        record = self.records[key] = queueing.Record(key)
        return record, True

    def _drop(self, key: queueing.Key) -> queueing.Record | None:
        self.queue.forget(key)
        return self.records.pop(key, None)

    def _schedule(self, *keys: queueing.Key) -> None:
        for key in keys:
            if key not in self.records:
                if key[0] == groups.AGENT:
                    continue  # not seen yet: its own listing will schedule it
                self._record(key)
            self.queue.add(key)
        if keys:
            self._wake.set()

    def _dependents_changed(self, kind: str, namespace: str, name: str) -> None:
        found = indexing.dependents(kind, namespace, name, self.indexes)
        self._schedule(*((groups.AGENT, namespace, agent) for agent in sorted(found)))

    def _target_changed(self, namespace: str, name: str) -> None:
        """An Agent came or went: agent Tools calling it change Ready, and their users."""
        referrers = self.indexes.referrers(groups.AGENT, namespace, name)
        self._schedule(*((kind, namespace, referrer) for kind, referrer in referrers))
        self._dependents_changed(groups.AGENT, namespace, name)
