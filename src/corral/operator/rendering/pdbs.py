"""The optional PodDisruptionBudget: only when an Agent asks for at least two replicas. Pure.

With `spec.autoscaling`, `replicas` here is the HPA's `minReplicas`.
"""

from __future__ import annotations

from typing import Any

from corral.operator import naming
from corral.operator.rendering import metadata


def pdb(owner: metadata.Owner, replicas: int | None, enabled: bool) -> dict[str, Any] | None:
    """A budget allowing one voluntary disruption at a time, or None when it cannot help
    (replicas unset, 0 or 1: a budget would only block node drains)."""
    if not enabled or replicas is None or replicas <= 1:
        return None
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": metadata.metadata(naming.pdb(owner.name), owner),
        "spec": {
            "maxUnavailable": 1,
            "selector": {"matchLabels": naming.selector_labels(owner.name)},
        },
    }
