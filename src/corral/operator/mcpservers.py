"""MCPServer discovery, one task per server: what `status` says about each MCPServer.

Every MCPServer is discovered in its own task, started when the server is first seen and
cancelled when it is deleted (`observe`, told by the `Scheduler` of every MCPServer event): a
server that never answers delays only itself, never another server or any Agent. Discovery
writes, so it runs only while this process leads (`start` and `close`, from `Scheduler.lead`,
which `electing` runs while holding the Lease): a standby discovers nothing. (Not a
`kopf.daemon`: Kopf puts a finalizer on every object with a daemon, and Corral's objects carry
none, so deleting one never waits for the operator.) Each round reads the object from the watch
cache (overlaid with the round's own last status write), reads the header values of
`headersFrom` from their Secrets (the cache keeps only digests; the values go to the server and
nowhere else), discovers (`discovering`, bounded by the server's timeout), and patches `/status`
only when it differs (`mcpstatuses`). A round runs at start, when `wake` is called (the spec, a
Secret or the Agents using the server changed: the `Scheduler` calls it) and every
`mcp_discovery_interval_seconds` (`mcp_retry_seconds` after a failed discovery). When an event
shows the listed tool names changed, the Agents using the server are reconciled (their
allow-lists are checked against the list; their pods do not roll: the runtime lists tools
itself).
Does I/O through `kube.Kube`.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import dataclasses
import logging
from collections.abc import Callable, Mapping
from typing import Any

from pydantic import ValidationError

from corral.api import groups
from corral.api.mcpservers import MCPServerSpec
from corral.operator import discovering, indexing, kube, mcpstatuses, queueing, statuses
from corral.operator.metrics import Metrics
from corral.operator.reconciling import utcnow
from corral.operator.settings import OperatorSettings

log = logging.getLogger(__name__)
Name = tuple[str, str]


@dataclasses.dataclass
class Discoveries:
    """The running discovery of every MCPServer, and the way to wake one."""

    client: kube.Kube
    indexes: indexing.Indexes
    settings: OperatorSettings
    metrics: Metrics
    tools_changed: Callable[[str, str], None]
    """Told (namespace, name) when a server's listed tool names changed."""
    _running: dict[Name, tuple[asyncio.Task[None], asyncio.Event]] = dataclasses.field(
        default_factory=dict
    )
    _listed: dict[Name, list[str]] = dataclasses.field(default_factory=dict)
    _written: dict[Name, queueing.Record] = dataclasses.field(default_factory=dict)
    _active: bool = False

    def observe(self, event_type: str | None, body: Mapping[str, Any]) -> None:
        """An MCPServer event: start its discovery task when first seen, stop it when gone;
        when the tool names in its status changed, reconcile its Agents (from the event, so
        the index the reconcile reads already holds the new names)."""
        key = indexing.identity(body)
        if event_type == "DELETED":
            running = self._running.pop(key, None)
            self._listed.pop(key, None)
            self._written.pop(key, None)
            if running is not None:
                running[0].cancel()
            return
        written = self._written.get(key)
        if written is not None:
            written.seen(groups.MCPSERVER, body)
        if self._active and key not in self._running:
            self._spawn(key)
        names = mcpstatuses.tool_names(body.get("status"))
        before = self._listed.get(key)
        self._listed[key] = names
        if before is not None and before != names:
            self.tools_changed(*key)

    @property
    def running(self) -> list[Name]:
        """The MCPServers whose discovery task runs, sorted."""
        return sorted(self._running)

    def start(self) -> None:
        """This process leads: discover every MCPServer the cache holds, and each new one."""
        self._active = True
        for key in sorted(self.indexes.referenced[groups.MCPSERVER]):
            if key not in self._running:
                self._spawn(key)

    def _spawn(self, key: Name) -> None:
        wake = asyncio.Event()
        task = asyncio.create_task(self._run(*key, wake), name=f"mcp {key}")
        self._running[key] = (task, wake)

    def wake(self, namespace: str, name: str) -> None:
        """Discover the server again now (no-op for a server not seen yet)."""
        running = self._running.get((namespace, name))
        if running is not None:
            running[1].set()

    async def close(self) -> None:
        """This process no longer leads (or stops): cancel every discovery."""
        self._active = False
        tasks = [task for task, _ in self._running.values()]
        self._running.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _run(self, namespace: str, name: str, wake: asyncio.Event) -> None:
        """Discover the server, again and again, until the task is cancelled."""
        while True:
            wake.clear()
            worked = await self.round(namespace, name)
            s = self.settings
            wait = s.mcp_discovery_interval_seconds if worked else s.mcp_retry_seconds
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await wake.wait()

    async def round(self, namespace: str, name: str) -> bool:
        """One discovery and status write; True when the server was discovered."""
        url = kube.path(groups.API_VERSION, groups.MCPSERVER, namespace, name)
        key = (groups.MCPSERVER, namespace, name)
        written = self._written.setdefault((namespace, name), queueing.Record(key))
        cached = self.indexes.body(groups.MCPSERVER, namespace, name)
        body = written.newest(groups.MCPSERVER, cached)
        if body is None:
            return True
        try:
            outcome = await self._discover(namespace, body)
            answer = await self._write(namespace, name, url, body, outcome)
        except Exception as err:  # the next round tries again; nothing else is held up
            self.metrics.errors.labels(kind=groups.MCPSERVER, reason=type(err).__name__).inc()
            log.warning("MCPServer %s/%s: discovery round failed: %s", namespace, name, err)
            return False
        if answer is not None:
            written.written[groups.MCPSERVER] = indexing.trim(answer)
        self.metrics.reconciles.labels(kind=groups.MCPSERVER, outcome="success").inc()
        return outcome.ok

    async def _discover(self, namespace: str, body: Mapping[str, Any]) -> discovering.Discovery:
        try:
            spec = MCPServerSpec.model_validate(body.get("spec") or {})
        except ValidationError as err:
            problems = "; ".join(str(e["msg"]) for e in err.errors())
            return discovering.Discovery("InvalidSpec", problems[:1024])
        headers = dict(spec.headers or {})
        for header in spec.headers_from or []:
            ref = header.secret_key_ref
            value = await self._secret_value(namespace, ref.name, ref.key)
            if value is None:
                return discovering.Discovery(
                    "MissingReference", f"not found: Secret {ref.name!r} (key {ref.key!r})"
                )
            headers[header.name] = value
        return await discovering.discover(spec, headers)

    async def _secret_value(self, namespace: str, name: str, key: str) -> str | None:
        secret = await self.client.get(kube.path("v1", "Secret", namespace, name))
        encoded = ((secret or {}).get("data") or {}).get(key)
        if encoded is None:
            return None
        try:
            return base64.b64decode(encoded).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None

    async def _write(
        self,
        namespace: str,
        name: str,
        url: str,
        body: Mapping[str, Any],
        outcome: discovering.Discovery,
    ) -> dict[str, Any] | None:
        """Patch the status when it changed: the object as the API server answered, or None."""
        previous = body.get("status") or {}
        generation = int((body.get("metadata") or {}).get("generation") or 0)
        used_by = indexing.used_by(
            groups.MCPSERVER, namespace, name, self.indexes.agents_by_reference
        )
        status = mcpstatuses.desired(generation, outcome, used_by, previous, utcnow())
        if status == dict(previous):
            return None
        return await self.client.patch_status(
            groups.MCPSERVER, url, statuses.merge_patch(previous, status)
        )
