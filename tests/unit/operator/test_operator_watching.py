"""The Agents' and children's watch caches (`watching`) against a scripted API: listing page by
page, watching from the listing's version, resuming, listing again after 410 Gone (telling what
changed or vanished meanwhile), and keeping only the namespaces the operator watches. No
wall-clock waits: a scripted API that has nothing more to say blocks, and the test stops the
watch once it does."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Mapping
from typing import Any

import pytest

from corral.operator import errors, kinds, kube, naming, watching

DEPLOYMENTS = kinds.BY_KIND["Deployment"]
Event = dict[str, Any] | Exception


def deployment(
    name: str, version: int, namespace: str = "shop", agent: str | None = None
) -> dict[str, Any]:
    labels = {**naming.MANAGED_SELECTOR, naming.AGENT_LABEL: agent or name}
    return {
        "metadata": {
            "name": name,
            "namespace": namespace,
            "resourceVersion": str(version),
            "labels": labels,
            "managedFields": [{"manager": "corral", "operation": "Apply"}],
        },
        "spec": {"replicas": 1},
    }


@dataclasses.dataclass
class ScriptedApi:
    """Listings (each a list of pages) and watch streams, handed out in order."""

    listings: list[list[list[dict[str, Any]]]]
    streams: list[list[Event]]
    lists: list[dict[str, str]] = dataclasses.field(default_factory=list)
    watches: list[dict[str, str]] = dataclasses.field(default_factory=list)
    done: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)

    async def list_page(self, url: str, query: Mapping[str, str]) -> dict[str, Any]:
        self.lists.append(dict(query))
        pages = self.listings[0]
        index = int(query.get("continue", "0"))
        if index == len(pages) - 1:
            self.listings.pop(0)
        more = {"continue": str(index + 1)} if index < len(pages) - 1 else {}
        return {"items": pages[index], "metadata": {"resourceVersion": f"list-{index}", **more}}

    async def watch(
        self, url: str, query: Mapping[str, str], read_timeout: float
    ) -> AsyncIterator[dict[str, Any]]:
        self.watches.append(dict(query))
        if not self.streams:
            self.done.set()
            await asyncio.Event().wait()
        for event in self.streams.pop(0):
            if isinstance(event, Exception):
                raise event
            yield event


async def watched(
    api: ScriptedApi, namespace: str | None = "shop", **kw: Any
) -> tuple[watching.Cache, list[tuple[str | None, str]]]:
    """Run one Deployment watch until the script is spent; the cache and what it told."""
    cache = watching.Cache()
    told = await run_watch(api, watching.Source.child(DEPLOYMENTS), cache, namespace, **kw)
    return cache, told


async def run_watch(
    api: ScriptedApi,
    source: watching.Source,
    cache: watching.Store,
    namespace: str | None = "shop",
    **kw: Any,
) -> list[tuple[str | None, str]]:
    """Run one watch until the script is spent; what it told."""
    told: list[tuple[str | None, str]] = []
    watch = watching.Watch(
        client=api,  # type: ignore[arg-type]
        source=source,
        namespace=namespace,
        cache=cache,
        seen=lambda kind, event_type, body: told.append((event_type, body["metadata"]["name"])),
        server_timeout=300,
        client_timeout=330,
        **kw,
    )
    task = asyncio.create_task(watch.run())
    await api.done.wait()
    assert watch.synced.is_set()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    return told


def names(cache: watching.Cache) -> dict[tuple[str, str], list[str]]:
    return {key: sorted(b["metadata"]["name"] for b in bodies) for key, bodies in cache.items()}


@pytest.mark.anyio
async def test_a_listing_page_by_page_fills_the_cache_keyed_by_agent_and_trimmed() -> None:
    api = ScriptedApi(
        listings=[
            [[deployment("a", 1)], [deployment("b", 2), deployment("b-extra", 3, agent="b")]]
        ],
        streams=[],
    )
    cache, told = await watched(api)
    assert names(cache) == {("shop", "a"): ["a"], ("shop", "b"): ["b", "b-extra"]}
    assert told == [(None, "a"), (None, "b"), (None, "b-extra")], "listed, as Kopf tells it"
    body = next(iter(cache[("shop", "a")]))
    assert body["kind"] == "Deployment"
    assert "managedFields" not in body["metadata"]
    assert [q.get("continue") for q in api.lists] == [None, "1"]
    assert all(q["labelSelector"] == watching.SELECTOR for q in api.lists)
    assert api.watches[0]["resourceVersion"] == "list-1", "watched from the listing's version"


@pytest.mark.anyio
async def test_watch_events_change_the_cache_and_the_watch_resumes_where_it_ended() -> None:
    api = ScriptedApi(
        listings=[[[deployment("a", 1), deployment("b", 2)]]],
        streams=[
            [
                {"type": "MODIFIED", "object": deployment("a", 5)},
                {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "7"}}},
            ],
            [
                {"type": "DELETED", "object": deployment("b", 8)},
                {"type": "ADDED", "object": deployment("c", 9)},
                errors.ApiUnavailable("the API server went away"),
            ],
        ],
    )
    cache, told = await watched(api, retry_base_seconds=0)
    assert names(cache) == {("shop", "a"): ["a"], ("shop", "c"): ["c"]}
    assert told[2:] == [("MODIFIED", "a"), ("DELETED", "b"), ("ADDED", "c")]
    assert [q["resourceVersion"] for q in api.watches] == ["list-0", "7", "9"]
    assert len(api.lists) == 1, "a broken stream resumes; it does not list again"


@pytest.mark.anyio
async def test_after_410_gone_it_lists_again_and_tells_only_what_changed_or_vanished() -> None:
    api = ScriptedApi(
        listings=[
            [[deployment("a", 1), deployment("b", 2), deployment("c", 3)]],
            [[deployment("a", 1), deployment("c", 6), deployment("d", 7)]],
        ],
        streams=[[kube.Gone("WATCH: 410 too old")]],
    )
    cache, told = await watched(api)
    assert names(cache) == {("shop", k): [k] for k in ("a", "c", "d")}
    assert told[3:] == [("MODIFIED", "c"), ("MODIFIED", "d"), ("DELETED", "b")]


@pytest.mark.anyio
async def test_a_cluster_wide_watch_keeps_only_the_namespaces_it_is_told_to() -> None:
    api = ScriptedApi(
        listings=[[[deployment("a", 1, namespace="team-a"), deployment("z", 2, namespace="z")]]],
        streams=[[{"type": "ADDED", "object": deployment("y", 3, namespace="z")}]],
    )
    cache, told = await watched(api, namespace=None, accept=lambda ns: ns.startswith("team-"))
    assert names(cache) == {("team-a", "a"): ["a"]}
    assert told == [(None, "a")]


def test_a_child_relabelled_to_another_agent_moves_in_the_cache() -> None:
    cache = watching.Cache()
    cache.put(deployment("x", 1, agent="one"))
    cache.put(deployment("x", 2, agent="two"))
    assert names(cache) == {("shop", "two"): ["x"]}
    cache.drop("shop", "x")
    assert len(cache) == 0


def agent(name: str, version: int, persona: str | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"model": {"provider": "openai", "name": "gpt-4o"}}
    if persona is not None:
        spec["personaRef"] = {"name": persona}
    meta = {"name": name, "namespace": "shop", "resourceVersion": str(version)}
    return {"metadata": {**meta, "managedFields": [{"manager": "kubectl"}]}, "spec": spec}


@pytest.mark.anyio
async def test_the_agents_watch_keeps_them_by_name_and_their_names_by_what_they_use() -> None:
    api = ScriptedApi(
        listings=[[[agent("a", 1, persona="tone"), agent("b", 2)]]],
        streams=[
            [
                {"type": "MODIFIED", "object": agent("b", 3, persona="tone")},
                {"type": "MODIFIED", "object": agent("a", 4, persona="other")},
                {"type": "DELETED", "object": agent("b", 5, persona="tone")},
            ]
        ],
    )
    agents = watching.Agents()
    told = await run_watch(api, watching.AGENTS, agents)
    assert told == [
        (None, "a"),
        (None, "b"),
        ("MODIFIED", "b"),
        ("MODIFIED", "a"),
        ("DELETED", "b"),
    ]
    assert list(agents.bodies) == [("shop", "a")]
    body = agents.bodies[("shop", "a")][0]
    assert (body["apiVersion"], body["kind"]) == ("corral.dev/v1alpha1", "Agent")
    assert "managedFields" not in body["metadata"]
    assert agents.names == {"shop": {"a"}, ("Persona", "shop", "other"): {"a"}}
    assert all("labelSelector" not in query for query in (*api.lists, *api.watches)), (
        "every Agent, not only labelled ones"
    )


def test_the_watch_urls_are_per_namespace_or_cluster_wide() -> None:
    caches = watching.Caches()
    built = watching.Watches.build(
        kube.Kube(api=None, request_timeout=1, connect_timeout=1),  # type: ignore[arg-type]
        caches,
        lambda kind, event_type, body: None,
        scopes=["a", "b"],
        accept=lambda namespace: True,
        server_timeout=300,
        client_timeout=330,
    )
    urls = {watch.url for watch in built.watches}
    assert "/apis/apps/v1/namespaces/a/deployments" in urls
    assert "/api/v1/namespaces/b/configmaps" in urls
    assert "/apis/corral.dev/v1alpha1/namespaces/a/agents" in urls
    assert len(urls) == 2 * (1 + len(kinds.CHILDREN))
    assert set(caches.children) == {child.kind for child in kinds.CHILDREN}
