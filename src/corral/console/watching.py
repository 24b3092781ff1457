"""The registry's live stream: watches of every listed source, as Server-Sent Events. Does I/O.

`stream` first sends a `sync` per listing (every row that matches the filters, so rows changed
since the page was rendered are brought up to date and rows deleted since are dropped), then
follows a watch per source from its list's resourceVersion and sends `upsert` and `remove`
events with the rows rendered by the same template as the page. A watch the server ends is
resumed from the last version seen; one whose version expired (410) is listed again and
re-synced. A comment line every `keepalive` seconds keeps proxies from closing an idle stream.
Called by the registry routes; knows nothing of FastAPI.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

from corral.console import kube, listing, rows

Render = Callable[[rows.Row], str]
Clock = Callable[[], datetime.datetime]
logger = logging.getLogger(__name__)
RETRY_SECONDS = 2.0


def message(event: str, data: dict[str, Any]) -> str:
    """One SSE message."""
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


class View:
    """How rows are shown on this page: its filters, the row template and the clock."""

    def __init__(self, filters: rows.Filters, render: Render, now: Clock) -> None:
        self.filters = filters
        self.render = render
        self.now = now

    def event(self, kind: str, obj: dict[str, Any]) -> str:
        r = rows.row(obj, self.now())
        if kind == "DELETED" or not self.filters.matches(r):
            return message("remove", {"key": r.key})
        return message("upsert", {"key": r.key, "html": self.render(r)})


def sync(lst: listing.Listing, source: listing.Source | None, view: View) -> str:
    """Every matching row of `lst` (of `source`'s namespace only, when given)."""
    namespace = source.namespace if source is not None else None
    objects = [
        o for o in lst.objects if namespace is None or o["metadata"].get("namespace") == namespace
    ]
    shown = [r for r in (rows.row(o, view.now()) for o in objects) if view.filters.matches(r)]
    return message(
        "sync",
        {
            "kind": lst.kind.kind,
            "namespace": namespace,
            "rows": [{"key": r.key, "html": view.render(r)} for r in shown],
        },
    )


async def stream(
    client: kube.Kube,
    listings: Sequence[listing.Listing],
    view: View,
    keepalive: float = 15.0,
) -> AsyncIterator[str]:
    queue: asyncio.Queue[str] = asyncio.Queue()
    for lst in listings:
        yield sync(lst, None, view)
    tasks = [
        asyncio.create_task(_follow(client, lst, source, view, queue))
        for lst in listings
        for source in lst.sources
    ]
    try:
        while True:
            try:
                yield await asyncio.wait_for(queue.get(), keepalive)
            except TimeoutError:
                yield ": keep-alive\n\n"
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _follow(
    client: kube.Kube,
    lst: listing.Listing,
    source: listing.Source,
    view: View,
    queue: asyncio.Queue[str],
) -> None:
    version = source.resource_version
    while True:
        try:
            async for event in client.watch(source.path, version):
                obj = event.get("object") or {}
                version = str((obj.get("metadata") or {}).get("resourceVersion", version))
                if event.get("type") in ("ADDED", "MODIFIED", "DELETED"):
                    obj.setdefault("kind", lst.kind.kind)
                    await queue.put(view.event(str(event["type"]), obj))
        except kube.KubeError as err:
            if err.status != 410:
                logger.warning("watch of %s failed: %s", source.path, err.message)
                await queue.put(message("problem", {"message": f"live updates: {err.message}"}))
                await asyncio.sleep(RETRY_SECONDS)
            fresh = await _relist(client, lst, source)
            if fresh is None:
                continue
            lst, version = fresh, fresh.sources[0].resource_version
            await queue.put(sync(lst, source, view))
            await queue.put(message("problem", {"message": ""}))


async def _relist(
    client: kube.Kube, lst: listing.Listing, source: listing.Source
) -> listing.Listing | None:
    try:
        fresh = await listing.list_one(client, lst.kind, source.namespace)
    except kube.KubeError as err:
        logger.warning("listing %s failed: %s", source.path, err.message)
        await asyncio.sleep(RETRY_SECONDS)
        return None
    return fresh if fresh.sources else None
