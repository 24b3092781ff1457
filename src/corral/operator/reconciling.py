"""One run of an Agent, Persona or Tool: observe -> resolve -> render -> apply -> status.

Does I/O through `kube.Kube`, and only writes: every read comes from the watch cache
(`indexing.Indexes`), overlaid with the operator's own writes the cache has not shown yet
(`queueing.Record.written`). `Reconciler.agent` is the one idempotent reconcile of an Agent,
for its creation, a change, a resume after a restart and the periodic drift check alike;
`Reconciler.referenced` keeps a Persona's or Tool's status. Each returns an `Outcome` that
`scheduling` records; neither raises for a domain error (the failure is in the status and the
outcome). Rendering is skipped when nothing it depends on changed since the last run: the
Agent's generation and the version of every object resolution looked at.
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from corral.api import groups
from corral.operator import (
    applying,
    errors,
    indexing,
    kube,
    naming,
    posting,
    queueing,
    referenced,
    resolving,
    statuses,
)
from corral.operator.metrics import Metrics
from corral.operator.rendering import children
from corral.operator.settings import OperatorSettings

log = logging.getLogger(__name__)
Lookup = tuple[str, str, str | None]
"""(kind, name, key) of one object resolution looked at."""


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What one run did, for `scheduling` to record."""

    written: Mapping[str, Mapping[str, Any]] = dataclasses.field(default_factory=dict)
    """Kind -> the object as our write answered ("Agent"/"Persona"/"Tool" for a status)."""
    error: Exception | None = None
    references: frozenset[queueing.Key] | None = None
    """The Personas and Tools the Agent uses (None: unknown, keep the last)."""
    memo: Any = None
    gone: bool = False
    held_since: float | None = None
    """A new Agent's first status is held back since then (`Record.held_since`)."""
    recheck_after: float | None = None
    """Run again within this many seconds (when a held-back status is due)."""


@dataclasses.dataclass(frozen=True)
class Rendered:
    """The memo of an Agent's run: its rendered children and what they were rendered from."""

    inputs: tuple[Any, ...]
    lookups: tuple[tuple[Lookup, str | None], ...]
    result: children.Children | errors.OperatorError
    references: frozenset[queueing.Key]
    mcp_not_offered: tuple[str, ...] | None = None
    """Allow-listed MCP tools their servers do not list; None: the Agent uses no MCPServer."""


def utcnow() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclasses.dataclass
class _Recording:
    """A `resolving.Reader` over the cache that notes every lookup and the version it saw."""

    indexes: indexing.Indexes
    lookups: dict[Lookup, str | None] = dataclasses.field(default_factory=dict)

    async def persona(self, namespace: str, name: str) -> Mapping[str, Any] | None:
        return self._note("Persona", namespace, name, await self.indexes.persona(namespace, name))

    async def tool(self, namespace: str, name: str) -> Mapping[str, Any] | None:
        return self._note("Tool", namespace, name, await self.indexes.tool(namespace, name))

    async def agent(self, namespace: str, name: str) -> Mapping[str, Any] | None:
        return self._note("Agent", namespace, name, await self.indexes.agent(namespace, name))

    async def mcp_server(self, namespace: str, name: str) -> Mapping[str, Any] | None:
        body = await self.indexes.mcp_server(namespace, name)
        return self._note(groups.MCPSERVER, namespace, name, body)

    async def secret_digest(self, namespace: str, name: str, key: str) -> str | None:
        digest = await self.indexes.secret_digest(namespace, name, key)
        self.lookups[("Secret", name, key)] = digest
        return digest

    def _note(
        self, kind: str, namespace: str, name: str, body: Mapping[str, Any] | None
    ) -> Mapping[str, Any] | None:
        self.lookups[(kind, name, None)] = version(body)
        return body


def version(body: Mapping[str, Any] | None) -> str | None:
    """What identifies the content an Agent's children and status depend on: uid and
    generation, and for an MCPServer the names of the tools its discovery listed."""
    if body is None:
        return None
    meta = body.get("metadata") or {}
    spec = f"{meta.get('uid')}/{meta.get('generation')}"
    listed = (body.get("status") or {}).get("tools")
    if listed is None:
        return spec
    return spec + "/" + ",".join(str(tool.get("name")) for tool in listed)


async def _current(indexes: indexing.Indexes, namespace: str, lookup: Lookup) -> str | None:
    kind, name, key = lookup
    if kind == "Secret":
        assert key is not None
        return await indexes.secret_digest(namespace, name, key)
    if kind == groups.AGENT:
        return version(await indexes.agent(namespace, name))
    return version(indexes.body(kind, namespace, name))


def _overlay(record: queueing.Record, kind: str, cached: Mapping[str, Any] | None) -> Any:
    return record.newest(kind, cached)


@dataclasses.dataclass
class Reconciler:
    client: kube.Kube
    settings: OperatorSettings
    metrics: Metrics
    indexes: indexing.Indexes
    clock: Callable[[], str] = utcnow
    monotonic: Callable[[], float] = time.monotonic
    """The scheduler's clock (for how long a first status has been held back)."""

    async def agent(self, key: queueing.Key, record: queueing.Record) -> Outcome:
        """Reconcile one Agent; see the module docstring."""
        started = time.monotonic()
        _, namespace, name = key
        body = _overlay(record, groups.AGENT, self.indexes.body(groups.AGENT, namespace, name))
        if body is None or (body.get("metadata") or {}).get("deletionTimestamp"):
            return Outcome(gone=True)
        try:
            outcome = await self._agent(namespace, name, body, record)
        except Exception as err:  # an API error, or a bug: retried, never fatal
            if not isinstance(err, errors.OperatorError):
                log.exception("Agent %s/%s: reconcile failed", namespace, name)
            outcome = Outcome(error=err, written=await self._initial_status(body))
        self._count(groups.AGENT, outcome.error, started)
        return outcome

    async def referenced(self, key: queueing.Key, record: queueing.Record) -> Outcome:
        """Bring a Persona's or Tool's status (Ready, usedBy) up to date."""
        started = time.monotonic()
        kind, namespace, name = key
        body = _overlay(record, kind, self.indexes.body(kind, namespace, name))
        if body is None:
            return Outcome(gone=True)
        used_by = indexing.used_by(kind, namespace, name, self.indexes.agents_by_reference)
        agents = self.indexes.agent_names(namespace)
        try:
            answer = await referenced.refresh(
                self.client, kind, body, used_by, agents, self.clock()
            )
        except errors.OperatorError as err:
            self._count(kind, err, started)
            return Outcome(error=err)
        self._count(kind, None, started)
        return Outcome(written={kind: indexing.trim(answer)} if answer is not None else {})

    async def _agent(
        self, namespace: str, name: str, body: Mapping[str, Any], record: queueing.Record
    ) -> Outcome:
        rendered = await self._render(namespace, body, record.memo)
        observed = {
            kind: _overlay(record, kind, self.indexes.child(kind, namespace, name))
            for kind in self.indexes.children
        }
        meta = body.get("metadata") or {}
        generation = int(meta.get("generation") or 0)
        written: dict[str, Mapping[str, Any]] = {}
        applied: applying.Applied | None = None
        failure: errors.OperatorError | None = None
        resolved_ok: bool | None = None
        if isinstance(rendered.result, errors.OperatorError):
            failure = rendered.result
            resolved_ok = False if isinstance(failure, errors.MissingReference) else None
            seen = self._failed(generation, failure, resolved_ok, observed)
        else:
            desired = rendered.result
            try:
                applied = await applying.apply_children(
                    self.client, desired, observed, str(meta.get("uid"))
                )
            except (errors.InvalidSpec, errors.NameConflict) as err:
                failure = err
                seen = self._failed(generation, err, True, observed)
            else:
                written.update({kind: applied.live[kind] for kind in applied.written})
                seen = statuses.Observation(
                    generation=generation,
                    references_resolved=True,
                    rollout=statuses.rollout(applied.live.get("Deployment"), desired.config_hash),
                    scaling=statuses.scaling(applied.live.get("HorizontalPodAutoscaler")),
                    endpoint=naming.endpoint(name, namespace),
                    config_hash=desired.config_hash,
                    mcp_not_offered=rendered.mcp_not_offered,
                )
        previous = dict(body.get("status") or {})
        status = statuses.agent_status(seen, previous, self.clock())
        held_since, recheck = self._hold_first_status(previous, status, record)
        if (
            held_since is None
            and status != previous
            and not statuses.only_progress(previous, status)
        ):
            url = kube.path(groups.API_VERSION, groups.AGENT, namespace, name)
            answer = await self.client.patch_status(
                groups.AGENT, url, statuses.merge_patch(previous, status)
            )
            written[groups.AGENT] = indexing.trim(answer)
        await self._post_events(body, previous, status, applied)
        return Outcome(
            written=written,
            error=failure,
            references=rendered.references,
            memo=rendered,
            held_since=held_since,
            recheck_after=recheck,
        )

    def _hold_first_status(
        self, previous: Mapping[str, Any], status: Mapping[str, Any], record: queueing.Record
    ) -> tuple[float | None, float | None]:
        """(held since, due in) while a new Agent's first status, "rolling out", is held back
        for `first_status_delay_seconds`: a rollout done meanwhile (its Deployment's watch
        event runs the Agent again) is then told by one write, Ready, instead of two. (None,
        None) once the status is to be written."""
        if not statuses.first_rollout(previous, status):
            return None, None
        now = self.monotonic()
        since = now if record.held_since is None else record.held_since
        left = since + self.settings.first_status_delay_seconds - now
        return (since, left) if left > 0 else (None, None)

    async def _initial_status(self, body: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
        """A first visit failed before the Agent had a status: set Ready=Unknown, so it shows a
        status while the retry waits. Best effort; a successful visit writes the real one."""
        previous = dict(body.get("status") or {})
        meta = body.get("metadata") or {}
        generation = int(meta.get("generation") or 0)
        initial = statuses.initial_agent_status(generation, previous, self.clock())
        if initial is None:
            return {}
        url = kube.path(groups.API_VERSION, groups.AGENT, str(meta["namespace"]), str(meta["name"]))
        try:
            answer = await self.client.patch_status(
                groups.AGENT, url, statuses.merge_patch(previous, initial)
            )
        except errors.OperatorError:
            return {}
        return {groups.AGENT: indexing.trim(answer)}

    async def _render(
        self, namespace: str, body: Mapping[str, Any], memo: Rendered | None
    ) -> Rendered:
        """The desired children (or why there are none), reusing the last run's when the Agent
        and everything resolution looked at are unchanged."""
        inputs = (version(body),)
        if memo is not None and memo.inputs == inputs:
            current = [await _current(self.indexes, namespace, lk) for lk, _ in memo.lookups]
            if current == [seen for _, seen in memo.lookups]:
                return memo
        reader = _Recording(self.indexes)
        result: children.Children | errors.OperatorError
        not_offered: tuple[str, ...] | None = None
        try:
            resolved = await resolving.resolve(body, reader)
            result = children.render(resolved, self.settings)
            not_offered = resolved.not_offered if resolved.mcp_servers else None
        except (errors.MissingReference, errors.InvalidSpec) as err:
            result = err
        references = frozenset(
            (kind, namespace, name)
            for kind, name, _ in reader.lookups
            if kind in indexing.BY_REFERENCED
        )
        lookups = tuple(reader.lookups.items())
        return Rendered(inputs, lookups, result, references, not_offered)

    def _failed(
        self,
        generation: int,
        failure: errors.OperatorError,
        resolved_ok: bool | None,
        observed: Mapping[str, Mapping[str, Any] | None],
    ) -> statuses.Observation:
        # Children stay as they were; report the replica counts of what is running.
        deployment = observed.get("Deployment")
        return statuses.Observation(
            generation=generation,
            failure=failure,
            references_resolved=resolved_ok,
            rollout=statuses.rollout(deployment, None) if deployment is not None else None,
            scaling=statuses.scaling(observed.get("HorizontalPodAutoscaler")),
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
        # A new Agent's first rollout is its status's to tell (RollingOut, then Available, each
        # with its lastTransitionTime, or Available at once): no Event, one request per Agent
        # saved. Later creations (a child deleted by hand), changes, reverts and every failure
        # are posted.
        first = not previous.get("conditions")
        if change is not None and not (first and change[0] == "Created"):
            events.append(("Normal", *change))
        transition = statuses.transition_event(previous, status)
        if transition is not None:
            told_by_status = first and transition[0] == "Normal"
            told_by_change = change is not None and transition[1] == "RollingOut"
            if not (told_by_status or told_by_change):
                events.append(transition)
        for type_, reason, message in events:
            log.info(
                "Agent %s/%s: %s: %s", meta.get("namespace"), meta.get("name"), reason, message
            )
            regarding = {"apiVersion": groups.API_VERSION, "kind": groups.AGENT, **body}
            event = posting.event(regarding, type_, reason, message, now=now, instance=instance)
            await posting.post(self.client, event)

    def _count(self, kind: str, error: Exception | None, started: float) -> None:
        outcome = "success" if error is None else errors.reason_of(error)
        if error is not None:
            self.metrics.errors.labels(kind=kind, reason=outcome).inc()
        self.metrics.reconciles.labels(kind=kind, outcome=outcome).inc()
        self.metrics.duration.labels(kind=kind).observe(time.monotonic() - started)
