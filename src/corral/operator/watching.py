"""The operator's own watch caches: one lean list+watch per kind, in place of Kopf's, for the
Agents and their children.

Does I/O (lists and watches through `kube.Kube`). `starting` builds the `Caches`: an `Agents`
(the Agents by name, and their names under their namespace and under everything they
reference, the shapes `indexing.agent_names` gives) and one `Cache` per kind of
`kinds.CHILDREN` ((namespace, Agent) -> bodies, the shape of a Kopf index), every body trimmed
by `indexing.trim`; and one `Watch` per kind and watched namespace (or one cluster-wide), which
keeps its cache current and tells the scheduler what changed (`scheduling.Scheduler.seen`).
Why not Kopf: Kopf runs every listed object through its per-object worker and, for a kind it
indexes, makes each wait until every object of every indexed kind is indexed (every waiting
object woken per object indexed: half a million wake-ups for 1,000 Agents), which costs
seconds per thousand objects on a restart. The Agents and their children are nearly all of
what the operator watches and need none of Kopf's handler machinery; Kopf keeps the few
Personas, Tools, MCPServers and Secrets (`indexing`, `handlers`).

A watch lists its collection page by page (the children filtered to the operator's own objects
by label), then watches from the listing's resourceVersion with bookmarks, resumes from the last
version it saw when the stream ends or breaks (backing off while the API server is
unreachable), and lists again when that version is too old (410 Gone), telling the scheduler
about every object that changed or vanished meanwhile. `synced` is set once the first listing is
in the cache: the scheduler runs nothing before every watch is synced, so no reconcile mistakes
an Agent or child not yet listed for a missing one.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable, Collection, Iterator, Mapping
from typing import Any, Protocol

from corral.api import groups
from corral.operator import errors, indexing, kinds, kube, naming

log = logging.getLogger(__name__)
Seen = Callable[[str, str | None, Mapping[str, Any]], None]
"""(kind, event type or None for a listing, body): `scheduling.Scheduler.seen`."""
PAGE = 500
SELECTOR = ",".join(f"{key}={value}" for key, value in naming.MANAGED_SELECTOR.items())


@dataclasses.dataclass(frozen=True)
class Source:
    """A collection a watch lists and watches: one kind, the operator's own objects only when
    `selector` is set."""

    kind: str
    api_version: str
    plural: str
    selector: str | None = None

    @property
    def url_prefix(self) -> str:
        return kinds.url_prefix(self.api_version)

    @classmethod
    def child(cls, child: kinds.ChildKind) -> Source:
        return cls(child.kind, child.api_version, child.plural, SELECTOR)


AGENTS = Source(groups.AGENT, groups.API_VERSION, groups.PLURALS[groups.AGENT])


class Store(Protocol):
    """What a `Watch` keeps current: a cache of one kind's objects by (namespace, name)."""

    def put(self, body: Mapping[str, Any]) -> None: ...

    def drop(self, namespace: str, name: str) -> None: ...

    def get_object(self, namespace: str, name: str) -> Mapping[str, Any] | None: ...

    def objects(self, namespace: str | None) -> list[indexing.Name]: ...


class Agents:
    """The Agents: `bodies` by (namespace, name) (an `indexing.BodyIndex`) and `names`, each
    Agent's name under its namespace and under everything it references (`indexing.agent_names`,
    read as `Indexes.agents_by_namespace` and `agents_by_reference`). Written only by its
    `Watch`s."""

    def __init__(self) -> None:
        self.bodies: dict[indexing.Name, tuple[dict[str, Any]]] = {}
        self.names: dict[str | indexing.Key, set[str]] = {}
        self._keys: dict[indexing.Name, list[str | indexing.Key]] = {}

    def put(self, body: Mapping[str, Any]) -> None:
        namespace, name = indexing.identity(body)
        self.drop(namespace, name)
        self.bodies[(namespace, name)] = (indexing.trim(body),)
        keys = self._keys[(namespace, name)] = list(indexing.agent_names(body))
        for key in keys:
            self.names.setdefault(key, set()).add(name)

    def drop(self, namespace: str, name: str) -> None:
        self.bodies.pop((namespace, name), None)
        for key in self._keys.pop((namespace, name), ()):
            held = self.names[key]
            held.discard(name)
            if not held:
                del self.names[key]

    def get_object(self, namespace: str, name: str) -> Mapping[str, Any] | None:
        held = self.bodies.get((namespace, name))
        return None if held is None else held[0]

    def objects(self, namespace: str | None) -> list[indexing.Name]:
        return [key for key in self.bodies if namespace is None or key[0] == namespace]


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
    """Keeps `cache` current with the objects of `source` in one namespace (None: every
    namespace, those `accept` refuses left out)."""

    client: kube.Kube
    source: Source
    namespace: str | None
    cache: Store
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
        return f"{self.source.url_prefix}{where}/{self.source.plural}"

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
        query = {**self._selected, "limit": str(PAGE)}
        while True:
            page = await self.client.list_page(self.url, query)
            for item in page.get("items") or []:
                body = {"apiVersion": self.source.api_version, "kind": self.source.kind, **item}
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
                self.seen(self.source.kind, "DELETED", gone)
        return version

    @property
    def _selected(self) -> dict[str, str]:
        return {} if self.source.selector is None else {"labelSelector": self.source.selector}

    async def _watch(self) -> None:
        """Apply the watch's events from `version` until the server ends the stream, keeping
        `version` at the last one seen (where a broken stream resumes)."""
        query = {
            **self._selected,
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
        body = {"apiVersion": self.source.api_version, "kind": self.source.kind, **body}
        if not self.accept(indexing.identity(body)[0]):
            return
        if event_type == "DELETED":
            self.cache.drop(*indexing.identity(body))
            self.seen(self.source.kind, event_type, body)
        else:
            self._put(event_type, body)

    def _put(self, event_type: str | None, body: Mapping[str, Any]) -> None:
        namespace, name = indexing.identity(body)
        cached = self.cache.get_object(namespace, name)
        version = (body.get("metadata") or {}).get("resourceVersion")
        if cached is not None and (cached.get("metadata") or {}).get("resourceVersion") == version:
            return  # relisted unchanged
        self.cache.put(body)
        self.seen(self.source.kind, event_type, body)


@dataclasses.dataclass
class Caches:
    """The Agents' cache and one cache per child kind, empty until their watches fill them."""

    agents: Agents = dataclasses.field(default_factory=Agents)
    children: dict[str, Cache] = dataclasses.field(
        default_factory=lambda: {child.kind: Cache() for child in kinds.CHILDREN}
    )

    def sources(self) -> list[tuple[Source, Store]]:
        """Each watched collection with the cache it fills."""
        children = [(Source.child(child), self.children[child.kind]) for child in kinds.CHILDREN]
        return [(AGENTS, self.agents), *children]


@dataclasses.dataclass
class Watches:
    """The watches filling every child kind's cache, run as tasks."""

    watches: list[Watch]
    tasks: list[asyncio.Task[None]] = dataclasses.field(default_factory=list)

    @classmethod
    def build(
        cls,
        client: kube.Kube,
        caches: Caches,
        seen: Seen,
        scopes: Collection[str | None],
        accept: Callable[[str], bool],
        server_timeout: int,
        client_timeout: float,
    ) -> Watches:
        """A watch per watched kind and scope: a namespace, or None for all of them (those
        `accept` refuses left out)."""
        return cls(
            [
                Watch(
                    client=client,
                    source=source,
                    namespace=scope,
                    cache=cache,
                    seen=seen,
                    server_timeout=server_timeout,
                    client_timeout=client_timeout,
                    accept=accept,
                )
                for source, cache in caches.sources()
                for scope in scopes
            ]
        )

    def start(self) -> None:
        for watch in self.watches:
            name = f"corral-watch-{watch.source.plural}-{watch.namespace or 'all'}"
            self.tasks.append(asyncio.create_task(watch.run(), name=name))

    async def synced(self) -> None:
        """Return once every watch holds its first listing."""
        await asyncio.gather(*(watch.synced.wait() for watch in self.watches))

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        self.tasks.clear()
