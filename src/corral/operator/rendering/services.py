"""The ClusterIP Service named after the Agent, which makes its endpoint predictable. Pure."""

from __future__ import annotations

from typing import Any

from corral.api import groups
from corral.operator import naming
from corral.operator.rendering import metadata


def service(owner: metadata.Owner) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata.metadata(naming.service(owner.name), owner),
        "spec": {
            "type": "ClusterIP",
            "selector": naming.selector_labels(owner.name),
            "ports": [
                {
                    "name": naming.PORT_NAME,
                    "port": groups.RUNTIME_PORT,
                    "targetPort": naming.PORT_NAME,
                    "protocol": "TCP",
                    "appProtocol": "http",
                }
            ],
        },
    }
