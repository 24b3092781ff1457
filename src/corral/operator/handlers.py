"""Kopf handlers: thin wiring from Kopf's watches to `indexing` and `scheduling`.

Importing this module registers the handlers on Kopf's default registry; `main.run` does that.
Kopf's indexes keep the observed state of what the Agents reference (Personas, Tools,
MCPServers, Secrets); the Agents and their children have their own watch caches (`watching`).
Event handlers only tell the `Scheduler` what they saw and return at once. Every call of one
also tells `starting` that Kopf's indexes hold their first listing (Kopf calls no handler
before): the scheduler runs nothing before that. Kopf watches the Agents for this alone, with
an event handler and no index, so that with any Agent to reconcile a handler is called. No
handler writes, raises for Kopf to retry, or stores anything on the objects: no finalizers
(owner references delete the children, so deleting an Agent never waits for the operator), no
progress or diff-base annotations. Every handler is `async` though none awaits: Kopf runs a
plain function in a thread, a hop per object and index. A Secret's values are reduced to
digests here and in its index function; they go no further. The referenced kinds come from
`indexing.REFERENCED`.
"""

from __future__ import annotations

import asyncio
from typing import Any

import kopf

from corral.api import groups
from corral.operator import hashing, indexing, starting
from corral.operator.scheduling import Scheduler

AGENTS = (groups.GROUP, groups.VERSION, groups.PLURALS[groups.AGENT])


def _ns(namespace: str | None) -> str:
    """Every Corral kind and every child is namespaced."""
    return namespace or "default"


def _indexed(memo: kopf.Memo) -> Scheduler:
    """The scheduler, once `starting` is told that Kopf's indexes are filled: Kopf calls no
    handler before every one of its indexes holds its first listing."""
    indexed: asyncio.Event = memo["indexed"]
    indexed.set()
    scheduler: Scheduler = memo["scheduler"]
    return scheduler


@kopf.on.startup()
async def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **kwargs: Any) -> None:
    await starting.start(settings, memo, kwargs)


@kopf.on.cleanup()
async def cleanup(memo: kopf.Memo, **_: Any) -> None:
    await starting.stop(memo)


@kopf.index("v1", "secrets")
async def secrets(body: kopf.Body, **_: Any) -> dict[indexing.Name, dict[str, str]]:
    return indexing.secret_digests(body)


@kopf.on.event(*AGENTS)
async def agent_event(memo: kopf.Memo, **_: Any) -> None:
    # The Agents' own watch (`watching`) tells the scheduler about them: this handler is only
    # the signal that Kopf's indexes are filled, called even when no other object exists.
    _indexed(memo)


@kopf.on.event("v1", "secrets")
async def secret_event(
    type: str | None, namespace: str | None, name: str, body: kopf.Body, memo: kopf.Memo, **_: Any
) -> None:
    # The values are reduced to one digest here: only "did the data change?" goes further.
    digest = hashing.secret_data_digest(_ns(namespace), name, body.get("data"))
    _indexed(memo).secret_seen(type, _ns(namespace), name, digest)


def _watch_referenced(referenced: indexing.ReferencedKind) -> None:
    @kopf.index(*referenced.resource, id=referenced.index)
    async def referenced_index(body: kopf.Body, **_: Any) -> dict[indexing.Name, dict[str, Any]]:
        return indexing.by_name(body)

    if referenced.references is not None:

        @kopf.index(*referenced.resource, id=referenced.by_reference_index)
        async def named_by(body: kopf.Body, **_: Any) -> dict[indexing.Key, str]:
            return indexing.named_by(referenced, body)

    @kopf.on.event(*referenced.resource, id=f"{referenced.kind.lower()}_event")
    async def referenced_event(
        type: str | None, body: kopf.Body, memo: kopf.Memo, **_: Any
    ) -> None:
        _indexed(memo).referenced_seen(referenced.kind, type, body)


for _referenced in indexing.REFERENCED:
    _watch_referenced(_referenced)
