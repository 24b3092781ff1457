"""Start and stop the running operator: Kopf's settings, the watch caches, the scheduler, leading.

Does I/O (connects the API client, starts the Agents' and children's watches and the
scheduler's task). Kopf's startup handler (in `handlers`) calls `start` once: it configures
Kopf, builds the `Scheduler` over Kopf's indexes and the Agents' and children's caches
(`watching`, filled by their own watches in every replica), with the MCPServers'
`mcpservers.Discoveries`, and puts it into Kopf's memo, where every handler finds it; then the
scheduler leads (reconciles and discovers) at once, or, with `--peering NAME`, whenever this
process holds the Lease of that name (`electing`). Its first run waits for every cache's first
listing: `watching`'s, and Kopf's, told by the first call of any Kopf handler (`indexed`).
`stop` (Kopf's cleanup) cancels them and closes the client.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from typing import Any

import kopf
from kopf._cogs.structs import references as kopf_references

from corral.api import groups
from corral.operator import (
    electing,
    indexing,
    kinds,
    kube,
    mcpservers,
    metrics,
    naming,
    settings,
    watching,
)
from corral.operator.reconciling import Reconciler
from corral.operator.scheduling import Scheduler


def configure(
    kopf_settings: kopf.OperatorSettings,
    config: settings.OperatorSettings,
    exact_namespaces: bool = False,
) -> None:
    """Kopf settings: watches only, nothing stored on the objects, Corral's own Events."""
    kopf_settings.posting.reporting_component = naming.MANAGER
    kopf_settings.posting.reporting_instance = config.reporting_instance
    # Our own Events are posted explicitly (CamelCase reasons); Kopf posts only its errors.
    kopf_settings.posting.level = logging.ERROR
    # High availability is a Lease (`electing`): every replica keeps watching, so a standby
    # takes over with a warm cache; Kopf's peering would pause the standby's watches.
    kopf_settings.peering.standalone = True
    # Watching namespaces listed by exact name needs no cluster-scoped grant: without runtime
    # scanning Kopf does not list CRDs and namespaces cluster-wide (the chart's namespaced
    # mode has only Roles). Globs need scanning to find their namespaces; cluster-wide,
    # scanning lets the operator start before the CRDs are installed.
    kopf_settings.scanning.disabled = exact_namespaces
    kopf_settings.watching.server_timeout = config.watch_server_timeout
    kopf_settings.watching.client_timeout = config.watch_client_timeout
    kopf_settings.watching.connect_timeout = config.connect_timeout
    kopf_settings.networking.request_timeout = config.request_timeout
    kopf_settings.networking.connect_timeout = config.connect_timeout


async def start(
    kopf_settings: kopf.OperatorSettings, memo: kopf.Memo, indices: Mapping[str, Any]
) -> Scheduler:
    """Configure Kopf, build the scheduler into `memo` and start leading (or electing)."""
    config: settings.OperatorSettings = memo.get("settings") or settings.load()
    meters: metrics.Metrics = memo.get("metrics") or metrics.build()
    configure(kopf_settings, config, exact_namespaces=bool(memo.get("exact")))
    client = await kube.connect(config.request_timeout, config.connect_timeout)
    client.on_write = meters.write
    caches = watching.Caches()
    indexes = indexing.Indexes.of(
        indices, caches.agents.bodies, caches.agents.names, caches.children
    )
    _gauge_managed(meters, indexes)
    reconciler = Reconciler(client=client, settings=config, metrics=meters, indexes=indexes)
    scheduler = Scheduler(settings=config, reconciler=reconciler, indexes=indexes)
    namespaces: list[str] = list(memo.get("namespaces") or [])
    exact = bool(memo.get("exact"))
    watches = watching.Watches.build(
        client,
        caches,
        scheduler.seen,
        scopes=namespaces if exact else [None],
        accept=namespace_filter(namespaces, exact),
        server_timeout=config.watch_server_timeout,
        client_timeout=config.watch_client_timeout,
    )
    watches.start()
    indexed = asyncio.Event()  # set by Kopf's handlers (`handlers._indexed`)

    async def observed() -> None:
        await watches.synced()
        await indexed.wait()

    scheduler.observed = observed
    # Discovery writes MCPServer status: it starts and stops with `scheduler.lead`.
    scheduler.discoveries = mcpservers.Discoveries(
        client=client,
        indexes=indexes,
        settings=config,
        metrics=meters,
        tools_changed=scheduler.tools_changed,
    )
    if config.peering is None:
        meters.leading.set(1)
        task = asyncio.create_task(scheduler.lead(), name="corral-lead")
    else:
        election = electing.Election.of(config, client.api, meters)
        task = asyncio.create_task(election.run(scheduler.lead), name="corral-election")
    memo["scheduler"] = scheduler
    memo["indexed"] = indexed
    memo["client"] = client
    memo["watches"] = watches
    memo["lead_task"] = task
    return scheduler


def namespace_filter(namespaces: list[str], exact: bool) -> Callable[[str], bool]:
    """Which namespaces a cluster-wide child watch keeps: all, or those matching one of the
    `-n` globs, by Kopf's own rules (so the children follow the Agents Kopf watches)."""
    if exact or not namespaces:
        return lambda namespace: True
    patterns: list[kopf_references.NamespacePattern] = list(namespaces)
    return lambda namespace: any(
        kopf_references.match_namespace(kopf_references.NamespaceName(namespace), pattern)
        for pattern in patterns
    )


async def stop(memo: Mapping[str, Any]) -> None:
    task: asyncio.Task[None] | None = memo.get("lead_task")
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(task, return_exceptions=True)
    watches: watching.Watches | None = memo.get("watches")
    if watches is not None:
        await watches.stop()
    client: kube.Kube | None = memo.get("client")
    if client is not None:
        await client.close()


def _gauge_managed(meters: metrics.Metrics, indexes: indexing.Indexes) -> None:
    """The managed-objects gauge reads the cache when scraped: no bookkeeping of its own. It
    runs on the metrics server's thread, so it only takes lengths (atomic), never iterates an
    index the event loop may be changing: one child of a kind per Agent."""
    meters.managed.labels(kind=groups.AGENT).set_function(_counter(indexes.agents))
    for child in kinds.CHILDREN:
        meters.managed.labels(kind=child.kind).set_function(_counter(indexes.children[child.kind]))


def _counter(index: indexing.BodyIndex) -> Callable[[], float]:
    return lambda: len(index)
