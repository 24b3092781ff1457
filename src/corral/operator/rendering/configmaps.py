"""The ConfigMap holding an Agent's runtime config under `runtime.json`. Pure."""

from __future__ import annotations

from typing import Any

from corral.api import groups
from corral.api.runtimeconfig import RuntimeConfig
from corral.operator import naming
from corral.operator.rendering import metadata


def configmap(owner: metadata.Owner, config: RuntimeConfig) -> dict[str, Any]:
    """The ConfigMap; the config is canonical JSON, so equal configs give equal objects."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata.metadata(naming.configmap(owner.name), owner),
        "data": {groups.RUNTIME_CONFIG_KEY: config.to_json()},
    }
