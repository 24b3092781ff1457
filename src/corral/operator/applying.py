"""Apply an Agent's desired children: the only place that writes them.

Does I/O through `kube.Kube`. Called by `reconciling` after rendering. For each child it reads
the live object and skips the write when the live object already carries the desired
`corral.dev/applied-hash` and contains every desired field (so an idle reconcile writes
nothing, and a hand edit of an owned field is reverted by the next reconcile). Writes are
server-side apply with field manager `corral` and force, owning only the rendered fields.
A PodDisruptionBudget that is no longer wanted is deleted (looked for only when the caller
cannot tell that none is left).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from corral.operator import comparing, errors, kube, naming
from corral.operator.rendering.children import Children


@dataclasses.dataclass(frozen=True)
class Applied:
    """What the children look like after applying, and which were written."""

    live: dict[str, dict[str, Any]]
    """Kind -> the live object (as returned by the apply, or as read when unchanged)."""
    before: dict[str, dict[str, Any] | None]
    """Kind -> the live object as read before applying (None when it did not exist)."""
    written: list[str]
    deleted: list[str]


async def apply_children(
    client: kube.Kube, children: Children, owner_uid: str, pdb_known_absent: bool = False
) -> Applied:
    """Apply what changed. `pdb_known_absent`: the last apply of this Agent left no budget of
    its own behind, so an unwanted one need not be looked for."""
    live: dict[str, dict[str, Any]] = {}
    before: dict[str, dict[str, Any] | None] = {}
    written: list[str] = []
    deleted: list[str] = []
    for desired in children.objects():
        kind = desired["kind"]
        current = before[kind] = await client.get(kube.path_of(desired))
        if current is not None:
            check_controller(current, owner_uid)
        if current is not None and unchanged(desired, current):
            live[kind] = current
            continue
        live[kind] = await client.apply(desired)
        written.append(kind)
    if (
        children.pdb is None
        and not pdb_known_absent
        and await _delete_unwanted_pdb(client, children, owner_uid)
    ):
        deleted.append("PodDisruptionBudget")
    return Applied(live=live, before=before, written=written, deleted=deleted)


def unchanged(desired: Mapping[str, Any], live: Mapping[str, Any]) -> bool:
    """True when applying `desired` could not change `live` in any field we own."""
    want = desired["metadata"].get("annotations", {}).get(naming.APPLIED_HASH)
    have = (live.get("metadata") or {}).get("annotations", {}).get(naming.APPLIED_HASH)
    return want is not None and want == have and comparing.contains(desired, live)


def check_controller(live: Mapping[str, Any], owner_uid: str) -> None:
    """Raise NameConflict unless `live` is controlled by the Agent (or is ours and orphaned)."""
    meta = live.get("metadata") or {}
    controllers = [ref for ref in meta.get("ownerReferences") or [] if ref.get("controller")]
    if any(ref.get("uid") == owner_uid for ref in controllers):
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


async def _delete_unwanted_pdb(client: kube.Kube, children: Children, owner_uid: str) -> bool:
    url = kube.path(
        "policy/v1", "PodDisruptionBudget", children.namespace, naming.pdb(children.agent)
    )
    current = await client.get(url)
    refs = ((current or {}).get("metadata") or {}).get("ownerReferences") or []
    if not any(ref.get("controller") and ref.get("uid") == owner_uid for ref in refs):
        return False  # absent, or someone else's budget: not ours to delete
    await client.delete("PodDisruptionBudget", url)
    return True


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
