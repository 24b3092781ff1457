"""Metadata shared by every child: names, explicit labels, the controller owner reference. Pure.

Called by each builder in this package. The Agent's own labels and annotations are never
copied (GitOps tools track objects by them).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from corral.api import groups
from corral.operator import naming


@dataclasses.dataclass(frozen=True)
class Owner:
    """The Agent that owns the children. `uid` is None offline, where no owner reference
    can be rendered (the API server assigns uids)."""

    name: str
    namespace: str
    uid: str | None


def metadata(name: str, owner: Owner) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": name,
        "namespace": owner.namespace,
        "labels": naming.labels(owner.name),
    }
    if owner.uid is not None:
        meta["ownerReferences"] = [
            {
                "apiVersion": groups.API_VERSION,
                "kind": groups.AGENT,
                "name": owner.name,
                "uid": owner.uid,
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ]
    return meta
