"""Listing the registry's kinds across the namespaces the user can see. Does I/O.

Each kind is listed across all namespaces when RBAC allows; when it forbids that, the kind is
listed in each namespace the user may see instead (the namespaces passed with `-n`, else every
namespace when the user may list namespaces, else the kubeconfig context's namespace), and the
listing says so. A listing also says where to watch from (`Source`: the collection path and the
resourceVersion of its list), so the live stream (`watching`) misses nothing between the two.
Called by the registry routes and by `watching`.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Sequence
from typing import Any

from corral.console import kinds, kube


@dataclasses.dataclass(frozen=True)
class Source:
    """One list request: a collection (all namespaces, or one) and its resourceVersion."""

    kind: kinds.Kind
    namespace: str | None  # None: all namespaces
    path: str
    resource_version: str


@dataclasses.dataclass(frozen=True)
class Listing:
    kind: kinds.Kind
    objects: list[dict[str, Any]]
    sources: list[Source]
    denied: list[str]  # namespaces (or "" for cluster-wide) where listing was forbidden
    not_installed: bool = False  # the API server does not serve this kind: no CRD

    @property
    def cluster_wide(self) -> bool:
        return any(s.namespace is None for s in self.sources)


async def candidate_namespaces(client: kube.Kube, configured: Sequence[str]) -> list[str]:
    """Where to look when a kind cannot be listed across all namespaces."""
    if configured:
        return list(configured)
    try:
        listed = await client.get(kinds.namespaces_path())
    except kube.KubeError as err:
        if err.forbidden:
            return [client.namespace]
        raise
    return sorted(str(n["metadata"]["name"]) for n in listed.get("items") or [])


async def list_one(client: kube.Kube, kind: kinds.Kind, namespace: str | None) -> Listing:
    """`kind` in `namespace` (None: all), or an empty listing naming it as denied."""
    path = kind.collection(namespace)
    try:
        body = await client.get(path)
    except kube.KubeError as err:
        if err.forbidden:
            return Listing(kind, [], [], [namespace or ""])
        if err.not_found:
            return Listing(kind, [], [], [], not_installed=True)
        raise
    items = [_typed(kind, item) for item in body.get("items") or []]
    version = str((body.get("metadata") or {}).get("resourceVersion", ""))
    return Listing(kind, items, [Source(kind, namespace, path, version)], [])


async def list_kind(client: kube.Kube, kind: kinds.Kind, configured: Sequence[str]) -> Listing:
    wide = await list_one(client, kind, None)
    if not wide.denied:
        return wide
    namespaces = await candidate_namespaces(client, configured)
    parts = await asyncio.gather(*(list_one(client, kind, ns) for ns in namespaces))
    return Listing(
        kind,
        [obj for part in parts for obj in part.objects],
        [source for part in parts for source in part.sources],
        ["", *(d for part in parts for d in part.denied)],
    )


async def list_all(
    client: kube.Kube, wanted: Sequence[kinds.Kind], configured: Sequence[str]
) -> list[Listing]:
    return list(await asyncio.gather(*(list_kind(client, k, configured) for k in wanted)))


def notice(listings: Sequence[Listing]) -> str | None:
    """What to tell the user when RBAC narrowed the registry or a CRD is missing; else None."""
    missing = [f"{lst.kind.plural}.corral.dev" for lst in listings if lst.not_installed]
    if missing:
        return (
            f"This cluster does not serve {', '.join(missing)}: Corral's CRDs are not installed."
            " Install Corral first: helm install corral charts/corral -n corral-system"
            " --create-namespace (or kubectl apply --server-side -f crds/)."
        )
    narrowed = [lst for lst in listings if "" in lst.denied]
    if not narrowed:
        return None
    shown = sorted({s.namespace for lst in narrowed for s in lst.sources if s.namespace})
    names = ", ".join(lst.kind.plural for lst in narrowed)
    where = ", ".join(shown) if shown else "none"
    hidden = sorted({d for lst in narrowed for d in lst.denied if d})
    text = (
        f"You may not list {names} across all namespaces, so the registry shows the"
        f" namespaces you may read: {where}."
    )
    if hidden:
        text += f" Forbidden too: {', '.join(hidden)}."
    return text + " (Start the console with -n NAMESPACE to choose others.)"


def _typed(kind: kinds.Kind, item: dict[str, Any]) -> dict[str, Any]:
    """List items of some kinds come without apiVersion/kind; the rows need them."""
    item.setdefault("apiVersion", kind.api_version)
    item.setdefault("kind", kind.kind)
    return item
