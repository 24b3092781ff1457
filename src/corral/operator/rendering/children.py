"""Render all children of one Agent from its resolved inputs: the entry point of rendering.

Pure. Called by `reconciling` (to apply) and `offline` (to print), so both produce the same
objects. Each child is stamped with `corral.dev/applied-hash`, the fingerprint `applying`
compares to skip writes. The kinds and their order come from `kinds.CHILDREN`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from corral.operator import hashing, kinds, naming
from corral.operator.rendering import (
    configmaps,
    deployments,
    hpas,
    metadata,
    pdbs,
    runtimeconfigs,
    services,
)
from corral.operator.resolving import Resolved
from corral.operator.settings import OperatorSettings


@dataclasses.dataclass(frozen=True)
class Children:
    """The desired children by kind; None for an optional kind the Agent should not have."""

    agent: str
    namespace: str
    by_kind: Mapping[str, dict[str, Any] | None]
    config_hash: str

    def objects(self) -> list[dict[str, Any]]:
        """The objects to apply, in `kinds.CHILDREN` order."""
        wanted = (self.by_kind.get(child.kind) for child in kinds.CHILDREN)
        return [obj for obj in wanted if obj is not None]

    @property
    def deployment(self) -> dict[str, Any]:
        deployment = self.by_kind["Deployment"]
        assert deployment is not None
        return deployment


def render(resolved: Resolved, settings: OperatorSettings, image: str | None = None) -> Children:
    """Every child of the Agent. `image` overrides settings (but not the Agent's own image)."""
    agent = resolved.agent
    spec = agent.spec
    owner = metadata.Owner(name=agent.name, namespace=agent.namespace, uid=agent.uid)
    config, envs = runtimeconfigs.render(resolved, drain_seconds=settings.drain_seconds)
    config_hash = hashing.config_hash(config.to_json(), resolved.secret_digests)
    runtime_image = spec.image or image or settings.image
    fewest = spec.autoscaling.min_replicas if spec.autoscaling is not None else spec.replicas
    rendered = {
        "ConfigMap": configmaps.configmap(owner, config),
        "Service": services.service(owner),
        "Deployment": deployments.deployment(
            owner, spec, envs, config_hash, settings, runtime_image
        ),
        "PodDisruptionBudget": pdbs.pdb(owner, fewest, settings.pod_disruption_budgets),
        "HorizontalPodAutoscaler": hpas.hpa(owner, spec.autoscaling),
    }
    assert set(rendered) == set(kinds.BY_KIND), "every child kind has a renderer"
    return Children(
        agent=agent.name,
        namespace=agent.namespace,
        by_kind={kind: stamp(obj) if obj is not None else None for kind, obj in rendered.items()},
        config_hash=config_hash,
    )


def stamp(manifest: dict[str, Any]) -> dict[str, Any]:
    """The manifest with its own hash in the `corral.dev/applied-hash` annotation."""
    digest = hashing.manifest_hash(manifest)
    meta = manifest["metadata"]
    annotations = {**meta.get("annotations", {}), naming.APPLIED_HASH: digest}
    return {**manifest, "metadata": {**meta, "annotations": annotations}}
