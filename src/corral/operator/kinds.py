"""The kinds of object an Agent owns: the one declaration every other module reads. Pure.

Each `ChildKind` says where the kind lives in the API (for `kube` paths and Kopf's watches),
how an Agent's object of that kind is named (`naming`), and whether an Agent may have none
(an optional child that is no longer rendered is deleted). Adding a child kind is one entry
here plus its renderer in `rendering.children`; watching, caching, applying, deleting, the
managed-objects gauge and RBAC tests all follow from this table.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Final

from corral.operator import naming


@dataclasses.dataclass(frozen=True)
class ChildKind:
    kind: str
    api_version: str
    plural: str
    name: Callable[[str], str]
    """The child's name for an Agent's name."""
    optional: bool = False
    """An Agent may have none: one no longer rendered is deleted."""

    @property
    def resource(self) -> tuple[str, str] | tuple[str, str, str]:
        """The (group, version, plural) Kopf watches, or (version, plural) for the core group."""
        group, _, version = self.api_version.rpartition("/")
        return (group, version, self.plural) if group else (version, self.plural)

    @property
    def url_prefix(self) -> str:
        return url_prefix(self.api_version)


def url_prefix(api_version: str) -> str:
    """Where the API serves an apiVersion's kinds: /api/v1 for the core group, else /apis/..."""
    return "/api/v1" if api_version == "v1" else f"/apis/{api_version}"


CHILDREN: Final = (
    ChildKind("ConfigMap", "v1", "configmaps", naming.configmap),
    ChildKind("Service", "v1", "services", naming.service),
    ChildKind("Deployment", "apps/v1", "deployments", naming.deployment),
    ChildKind(
        "PodDisruptionBudget", "policy/v1", "poddisruptionbudgets", naming.pdb, optional=True
    ),
    ChildKind(
        "HorizontalPodAutoscaler",
        "autoscaling/v2",
        "horizontalpodautoscalers",
        naming.hpa,
        optional=True,
    ),
)
"""In apply order: the config before the pods that mount it, the Deployment before what
selects or scales it."""

BY_KIND: Final = {child.kind: child for child in CHILDREN}
