"""The children's watch cache: one lean list+watch per child kind, in place of Kopf's.

Does I/O (lists and watches through `kube.Kube`). `starting` builds one `Cache` per kind of
`kinds.CHILDREN` (the same shape as a Kopf index: (namespace, Agent) -> bodies, trimmed by
`indexing.trim`) and one `Watch` per kind and watched namespace (or one cluster-wide), which
keeps it current and tells `scheduling.Scheduler.child_seen` what changed. Why not Kopf: Kopf
runs every listed object through its per-object worker and makes each wait until every index
is filled, which costs seconds per thousand objects on a restart; the children are three
quarters of what the operator watches and need none of Kopf's handler machinery.

A watch lists its collection page by page (filtered to the operator's own objects by label),
then watches from the listing's resourceVersion with bookmarks, resumes from the last version
it saw when the stream ends or breaks (backing off while the API server is unreachable), and
lists again when that version is too old (410 Gone), telling the scheduler about every object
that changed or vanished meanwhile. `synced` is set once the first listing is in the cache:
the scheduler runs nothing before every watch is synced, so no reconcile mistakes a child not
yet listed for a missing one.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable, Collection, Iterator, Mapping
from typing import Any

from corral.operator import errors, indexing, kinds, kube, naming

log = logging.getLogger(__name__)
Seen = Callable[[str, str | None, Mapping[str, Any]], None]
"""(kind, event type or None for a listing, body): `scheduling.Scheduler.child_seen`."""
PAGE = 500
SELECTOR = ",".join(f"{key}={value}" for key, value in naming.MANAGED_SELECTOR.items())


class Cache(Mapping[indexing.Name, Collection[Mapping[str, Any]]]):
    """One child kind's objects under (namespace, the Agent named by their label). Written
    only by its `Watch`s; read as an `indexing.BodyIndex`."""

    def __init__(self) -> None:
        self._by_agent: dict[indexing.Name, dict[str, dict[str, Any]]] = {}
        self._agent_of: dict[indexing.Name, indexing.Name] = {}

    def __getitem__(self, key: indexing.Name) -> Collection[Mapping[str, Any]]:
        return self._by_agent[key].values()

    def __iter__(self) -> Iterator[indexing.Name]:
        return iter(self._by_agent)

    def __len__(self) -> int:
        return len(self._by_agent)

    def get_object(self, namespace: str, name: str) -> Mapping[str, Any] | None:
        agent = self._agent_of.get((namespace, name))
        return None if agent is None else self._by_agent[agent].get(name)

    def objects(self, namespace: str | None) -> list[indexing.Name]:
        """(namespace, name) of every cached object, in `namespace` or in all."""
        return [key for key in self._agent_of if namespace is None or key[0] == namespace]

    def put(self, body: Mapping[str, Any]) -> None:
        namespace, name = indexing.identity(body)
        self.drop(namespace, name)
        for agent, trimmed in indexing.child_by_agent(body).items():
            self._by_agent.setdefault(agent, {})[name] = trimmed
            self._agent_of[(namespace, name)] = agent

    def drop(self, namespace: str, name: str) -> None:
        agent = self._agent_of.pop((namespace, name), None)
        if agent is not None:
            held = self._by_agent[agent]
            held.pop(name, None)
            if not held:
                del self._by_agent[agent]


@dataclasses.dataclass
class Watch:
    """Keeps `cache` current with the `kind` objects of one namespace (None: every namespace,
    those `accept` refuses left out)."""

    client: kube.Kube
    kind: kinds.ChildKind
    namespace: str | None
    cache: Cache
    seen: Seen
    server_timeout: int
    client_timeout: float
    accept: Callable[[str], bool] = lambda namespace: True
    retry_base_seconds: float = 1.0
    retry_max_seconds: float = 8.0
    """Kept short: a watch broken by an API server restart resumes soon after it is back."""
    synced: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)
    version: str | None = None
    """The resourceVersion the next watch starts from; None: list first."""

    @property
    def url(self) -> str:
        where = "" if self.namespace is None else f"/namespaces/{self.namespace}"
        return f"{self.kind.url_prefix}{where}/{self.kind.plural}"

    async def run(self) -> None:
        """List, then watch, until cancelled."""
        failures = 0
        while True:
            try:
                if self.version is None:
                    self.version = await self._list()
                    self.synced.set()
                await self._watch()
                failures = 0
            except kube.Gone:
                log.info("%s: watch expired, listing again", self.url)
                self.version = None
            except Exception as err:  # the API server went away, or a bug: never fatal
                if not isinstance(err, errors.OperatorError):
                    log.exception("%s: watch failed", self.url)
                else:
                    log.warning("%s: watch failed: %s", self.url, err)
                await asyncio.sleep(
                    errors.backoff(failures, self.retry_base_seconds, self.retry_max_seconds)
                )
                failures += 1

    async def _list(self) -> str:
        """Fill the cache from a listing; the resourceVersion to watch from. Objects that
        changed or vanished since the last listing are told to `seen` as watch events would
        be; on the first listing each is told as listed (event type None)."""
        first = not self.synced.is_set()
        listed: set[indexing.Name] = set()
        query = {"labelSelector": SELECTOR, "limit": str(PAGE)}
        while True:
            page = await self.client.list_page(self.url, query)
            for item in page.get("items") or []:
                body = {"apiVersion": self.kind.api_version, "kind": self.kind.kind, **item}
                if not self.accept(indexing.identity(body)[0]):
                    continue
                listed.add(indexing.identity(body))
                self._put(None if first else "MODIFIED", body)
            meta = page.get("metadata") or {}
            if not meta.get("continue"):
                version = str(meta.get("resourceVersion") or "")
                break
            query = {**query, "continue": str(meta["continue"])}
        for namespace, name in self.cache.objects(self.namespace):
            if (namespace, name) not in listed and (gone := self.cache.get_object(namespace, name)):
                self.cache.drop(namespace, name)
                self.seen(self.kind.kind, "DELETED", gone)
        return version

    async def _watch(self) -> None:
        """Apply the watch's events from `version` until the server ends the stream, keeping
        `version` at the last one seen (where a broken stream resumes)."""
        query = {
            "labelSelector": SELECTOR,
            "resourceVersion": str(self.version),
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(self.server_timeout),
        }
        async for event in self.client.watch(self.url, query, self.client_timeout):
            body = event.get("object") or {}
            seen_version = (body.get("metadata") or {}).get("resourceVersion")
            event_type = str(event.get("type"))
            if event_type != "BOOKMARK":
                self._apply(event_type, body)
            if seen_version:
                self.version = str(seen_version)

    def _apply(self, event_type: str, body: Mapping[str, Any]) -> None:
        body = {"apiVersion": self.kind.api_version, "kind": self.kind.kind, **body}
        if not self.accept(indexing.identity(body)[0]):
            return
        if event_type == "DELETED":
            self.cache.drop(*indexing.identity(body))
            self.seen(self.kind.kind, event_type, body)
        else:
            self._put(event_type, body)

    def _put(self, event_type: str | None, body: Mapping[str, Any]) -> None:
        namespace, name = indexing.identity(body)
        cached = self.cache.get_object(namespace, name)
        version = (body.get("metadata") or {}).get("resourceVersion")
        if cached is not None and (cached.get("metadata") or {}).get("resourceVersion") == version:
            return  # relisted unchanged
        self.cache.put(body)
        self.seen(self.kind.kind, event_type, body)


def caches() -> dict[str, Cache]:
    """An empty cache per child kind."""
    return {child.kind: Cache() for child in kinds.CHILDREN}


@dataclasses.dataclass
class Watches:
    """The watches filling every child kind's cache, run as tasks."""

    watches: list[Watch]
    tasks: list[asyncio.Task[None]] = dataclasses.field(default_factory=list)

    @classmethod
    def build(
        cls,
        client: kube.Kube,
        filled: Mapping[str, Cache],
        seen: Seen,
        scopes: Collection[str | None],
        accept: Callable[[str], bool],
        server_timeout: int,
        client_timeout: float,
    ) -> Watches:
        """A watch per child kind and scope: a namespace, or None for all of them (those
        `accept` refuses left out)."""
        return cls(
            [
                Watch(
                    client=client,
                    kind=child,
                    namespace=scope,
                    cache=filled[child.kind],
                    seen=seen,
                    server_timeout=server_timeout,
                    client_timeout=client_timeout,
                    accept=accept,
                )
                for child in kinds.CHILDREN
                for scope in scopes
            ]
        )

    def start(self) -> None:
        for watch in self.watches:
            name = f"corral-watch-{watch.kind.plural}-{watch.namespace or 'all'}"
            self.tasks.append(asyncio.create_task(watch.run(), name=name))

    async def synced(self) -> None:
        """Return once every watch holds its first listing."""
        await asyncio.gather(*(watch.synced.wait() for watch in self.watches))

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        self.tasks.clear()
