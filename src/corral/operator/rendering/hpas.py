"""The optional HorizontalPodAutoscaler (autoscaling/v2): only with `spec.autoscaling`. Pure.

It scales the Agent's Deployment on average CPU utilisation. The Deployment is then rendered
without `replicas` (see `deployments`), so the operator never fights the HPA over it.
"""

from __future__ import annotations

from typing import Any

from corral.api.agents import AutoscalingSpec
from corral.operator import naming
from corral.operator.rendering import metadata


def hpa(owner: metadata.Owner, autoscaling: AutoscalingSpec | None) -> dict[str, Any] | None:
    if autoscaling is None:
        return None
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": metadata.metadata(naming.hpa(owner.name), owner),
        "spec": {
            "scaleTargetRef": {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "name": naming.deployment(owner.name),
            },
            "minReplicas": autoscaling.min_replicas,
            "maxReplicas": autoscaling.max_replicas,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {
                            "type": "Utilization",
                            "averageUtilization": autoscaling.target_cpu_utilization_percentage,
                        },
                    },
                }
            ],
        },
    }
