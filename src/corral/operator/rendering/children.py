"""Render all children of one Agent from its resolved inputs: the entry point of rendering.

Pure. Called by `reconciling` (to apply) and `offline` (to print), so both produce the same
objects. Each child is stamped with `corral.dev/applied-hash`, the fingerprint `applying`
compares to skip writes.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from corral.operator import hashing, naming
from corral.operator.rendering import (
    configmaps,
    deployments,
    metadata,
    pdbs,
    runtimeconfigs,
    services,
)
from corral.operator.resolving import Resolved
from corral.operator.settings import OperatorSettings


@dataclasses.dataclass(frozen=True)
class Children:
    """The desired children. `pdb` is None when the Agent should have none."""

    agent: str
    namespace: str
    configmap: dict[str, Any]
    service: dict[str, Any]
    deployment: dict[str, Any]
    pdb: dict[str, Any] | None
    config_hash: str

    def objects(self) -> list[dict[str, Any]]:
        """In apply order: the config before the pods that mount it."""
        ordered = [self.configmap, self.service, self.deployment, self.pdb]
        return [obj for obj in ordered if obj is not None]


def render(resolved: Resolved, settings: OperatorSettings, image: str | None = None) -> Children:
    """Every child of the Agent. `image` overrides settings (but not the Agent's own image)."""
    agent = resolved.agent
    owner = metadata.Owner(name=agent.name, namespace=agent.namespace, uid=agent.uid)
    config, envs = runtimeconfigs.render(resolved, drain_seconds=settings.drain_seconds)
    config_hash = hashing.config_hash(config.to_json(), resolved.secret_digests)
    runtime_image = agent.spec.image or image or settings.image
    pdb = pdbs.pdb(owner, agent.spec.replicas, settings.pod_disruption_budgets)
    return Children(
        agent=agent.name,
        namespace=agent.namespace,
        configmap=stamp(configmaps.configmap(owner, config)),
        service=stamp(services.service(owner)),
        deployment=stamp(
            deployments.deployment(owner, agent.spec, envs, config_hash, settings, runtime_image)
        ),
        pdb=stamp(pdb) if pdb is not None else None,
        config_hash=config_hash,
    )


def stamp(manifest: dict[str, Any]) -> dict[str, Any]:
    """The manifest with its own hash in the `corral.dev/applied-hash` annotation."""
    digest = hashing.manifest_hash(manifest)
    meta = manifest["metadata"]
    annotations = {**meta.get("annotations", {}), naming.APPLIED_HASH: digest}
    return {**manifest, "metadata": {**meta, "annotations": annotations}}
