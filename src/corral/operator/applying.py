"""Apply an Agent's desired children: the only place that writes them.

Does I/O through `kube.Kube`, and only writes: the caller passes each child as last observed
(`indexing`, Kopf's watch cache, or the operator's own newer write). A child that already
carries the desired `corral.dev/applied-hash` and contains every desired field is left alone
(so an idle reconcile writes nothing, and a hand edit of an owned field is reverted by the
next one). Writes are server-side apply with field manager `corral`, owning only the rendered
fields: forced over a child known to be the Agent's, unforced when none was observed, so that
an unrelated object of the same name makes the API server refuse (`errors.NameConflict`)
instead of being taken over. An optional child (`kinds.ChildKind.optional`) that is no longer
rendered is deleted. Before the Deployment stops carrying `replicas` (an HPA takes over), the
current count is handed to a second field manager, so dropping it does not reset it to 1.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, Final

from corral.operator import comparing, errors, indexing, kinds, kube, naming
from corral.operator.rendering.children import Children

HANDOVER_MANAGER: Final = f"{naming.MANAGER}-handover"
"""Field manager that keeps `spec.replicas` while the operator lets go of it."""


@dataclasses.dataclass(frozen=True)
class Applied:
    """What the children look like after applying, and which were written."""

    live: dict[str, dict[str, Any]]
    """Kind -> the live object (as the write answered, or as observed when unchanged)."""
    before: dict[str, Mapping[str, Any] | None]
    """Kind -> the object as observed before applying (None when there was none)."""
    written: list[str]
    deleted: list[str]


async def apply_children(
    client: kube.Kube,
    children: Children,
    observed: Mapping[str, Mapping[str, Any] | None],
    owner_uid: str,
) -> Applied:
    """Write what differs from `observed` (kind -> the child as last seen, or None)."""
    live: dict[str, dict[str, Any]] = {}
    before: dict[str, Mapping[str, Any] | None] = {}
    written: list[str] = []
    deleted: list[str] = []
    for desired in children.objects():
        kind = desired["kind"]
        current = before[kind] = observed.get(kind)
        if current is not None:
            check_controller(current, owner_uid)
            if unchanged(desired, current):
                live[kind] = dict(current)
                continue
            if kind == "Deployment":
                await _hand_over_replicas(client, desired, current)
        live[kind] = await _apply(client, desired, known=current is not None)
        written.append(kind)
    for child in kinds.CHILDREN:
        current = observed.get(child.kind)
        unwanted = child.optional and children.by_kind.get(child.kind) is None
        if unwanted and current is not None and _controlled_by(current, owner_uid):
            await client.delete(child.kind, kube.path_of(current))
            deleted.append(child.kind)
    return Applied(live=live, before=before, written=written, deleted=deleted)


async def _apply(client: kube.Kube, desired: Mapping[str, Any], known: bool) -> dict[str, Any]:
    try:
        return indexing.trim(await client.apply(desired, force=known))
    except errors.ApiConflict as err:
        if known:
            raise
        meta = desired["metadata"]
        raise errors.NameConflict(
            f"{desired['kind']} {meta['name']!r} already exists and is not managed by this"
            " Agent; rename the Agent or delete that object"
        ) from err


async def _hand_over_replicas(
    client: kube.Kube, desired: Mapping[str, Any], current: Mapping[str, Any]
) -> None:
    """The operator owns `spec.replicas` but stops rendering it: give the count to another
    manager first (the Kubernetes way to hand a field to an HPA), keeping the pods running."""
    replicas = (current.get("spec") or {}).get("replicas")
    if "replicas" in desired["spec"] or not current.get(indexing.OWNS_REPLICAS) or replicas is None:
        return
    meta = desired["metadata"]
    handover = {
        "apiVersion": desired["apiVersion"],
        "kind": desired["kind"],
        "metadata": {"name": meta["name"], "namespace": meta["namespace"]},
        "spec": {"replicas": replicas},
    }
    await client.apply(handover, force=True, manager=HANDOVER_MANAGER)


def unchanged(desired: Mapping[str, Any], live: Mapping[str, Any]) -> bool:
    """True when applying `desired` could not change `live` in any field we own."""
    want = desired["metadata"].get("annotations", {}).get(naming.APPLIED_HASH)
    have = (live.get("metadata") or {}).get("annotations", {}).get(naming.APPLIED_HASH)
    return want is not None and want == have and comparing.contains(desired, live)


def _controlled_by(live: Mapping[str, Any], owner_uid: str) -> bool:
    refs = (live.get("metadata") or {}).get("ownerReferences") or []
    return any(ref.get("controller") and ref.get("uid") == owner_uid for ref in refs)


def check_controller(live: Mapping[str, Any], owner_uid: str) -> None:
    """Raise NameConflict unless `live` is controlled by the Agent (or is ours and orphaned)."""
    meta = live.get("metadata") or {}
    controllers = [ref for ref in meta.get("ownerReferences") or [] if ref.get("controller")]
    if _controlled_by(live, owner_uid):
        return
    labels = meta.get("labels") or {}
    ours = labels.get("app.kubernetes.io/managed-by") == naming.MANAGER
    if not controllers and ours:
        return  # orphaned by a deletion with propagationPolicy=Orphan: adopt it
    owner = ""
    if controllers:
        owner = f" (controlled by {controllers[0].get('kind')} {controllers[0].get('name')!r})"
    raise errors.NameConflict(
        f"{live.get('kind')} {meta.get('name')!r} already exists and is not managed by this"
        f" Agent{owner}; rename the Agent or delete that object"
    )


def change_event(applied: Applied) -> tuple[str, str] | None:
    """(reason, message) of the Normal Event describing what was written, or None."""
    if not applied.written and not applied.deleted:
        return None

    def name(kind: str) -> str:
        return f"{kind} {applied.live[kind]['metadata']['name']!r}"

    created = [k for k in applied.written if applied.before.get(k) is None]
    if created:
        return "Created", "created " + ", ".join(name(k) for k in created)
    if "Deployment" in applied.written:
        old = _template_hash(applied.before.get("Deployment"))
        if old != _template_hash(applied.live["Deployment"]):
            why = "the runtime config or a referenced Secret changed"
            return "RollingOut", f"{why}: rolling out {name('Deployment')}"
    reverted = [
        k
        for k in applied.written
        if _applied_hash(applied.before.get(k)) == _applied_hash(applied.live[k])
    ]
    if reverted:
        return "DriftReverted", (
            "reverted changes made outside the operator to " + ", ".join(name(k) for k in reverted)
        )
    parts = [name(k) for k in applied.written] + [f"deleted {k}" for k in applied.deleted]
    return "Updated", "updated " + ", ".join(parts)


def _template_hash(deployment: Mapping[str, Any] | None) -> str | None:
    template = ((deployment or {}).get("spec") or {}).get("template") or {}
    return ((template.get("metadata") or {}).get("annotations") or {}).get(naming.CONFIG_HASH)


def _applied_hash(obj: Mapping[str, Any] | None) -> str | None:
    return (((obj or {}).get("metadata") or {}).get("annotations") or {}).get(naming.APPLIED_HASH)
