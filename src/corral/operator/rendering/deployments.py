"""The runtime Deployment: probes, restricted security context, secretKeyRef env. Pure.

The only plain env values are the standard OTEL_* tracing settings (the chart's, then the
Agent's `spec.tracing`); secrets reach the container through `secretKeyRef` alone.

Called by `children.render`. `replicas` is rendered only when the Agent sets it, so that an
HPA (or a person with `kubectl scale`) can own it otherwise. The pod-template annotation
`corral.dev/config-hash` rolls the pods when the config or a referenced Secret changes.
"""

from __future__ import annotations

from typing import Any

from corral.api import groups
from corral.api.agents import AgentSpec
from corral.operator import naming
from corral.operator.rendering import metadata
from corral.operator.rendering.runtimeconfigs import SecretEnv
from corral.operator.settings import OperatorSettings

CONFIG_VOLUME = "config"
TMP_VOLUME = "tmp"


def deployment(
    owner: metadata.Owner,
    spec: AgentSpec,
    envs: list[SecretEnv],
    config_hash: str,
    settings: OperatorSettings,
    image: str,
) -> dict[str, Any]:
    deployment_spec: dict[str, Any] = {}
    if spec.replicas is not None:
        deployment_spec["replicas"] = spec.replicas
    deployment_spec |= {
        "revisionHistoryLimit": 3,
        "selector": {"matchLabels": naming.selector_labels(owner.name)},
        "strategy": {
            "type": "RollingUpdate",
            "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
        },
        "template": {
            "metadata": {
                "labels": naming.labels(owner.name),
                # Ours last: an Agent's podAnnotations cannot override the config hash.
                "annotations": {**(spec.pod_annotations or {}), naming.CONFIG_HASH: config_hash},
            },
            "spec": _pod(owner, spec, envs, settings, image),
        },
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata.metadata(naming.deployment(owner.name), owner),
        "spec": deployment_spec,
    }


def _pod(
    owner: metadata.Owner,
    spec: AgentSpec,
    envs: list[SecretEnv],
    settings: OperatorSettings,
    image: str,
) -> dict[str, Any]:
    pod: dict[str, Any] = {
        # The runtime never talks to the Kubernetes API.
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "terminationGracePeriodSeconds": settings.termination_grace_seconds,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": settings.run_as_user,
            "runAsGroup": settings.run_as_user,
            "fsGroup": settings.run_as_user,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [_container(spec, envs, settings, image)],
        "volumes": [
            {
                "name": CONFIG_VOLUME,
                "configMap": {
                    "name": naming.configmap(owner.name),
                    "items": [
                        {"key": groups.RUNTIME_CONFIG_KEY, "path": groups.RUNTIME_CONFIG_KEY}
                    ],
                },
            },
            # A writable /tmp under a read-only root filesystem.
            {"name": TMP_VOLUME, "emptyDir": {"sizeLimit": "64Mi"}},
        ],
    }
    if spec.service_account_name is not None:
        pod["serviceAccountName"] = spec.service_account_name
    if spec.node_selector:
        pod["nodeSelector"] = dict(spec.node_selector)
    if spec.tolerations:
        pod["tolerations"] = [t.to_wire() for t in spec.tolerations]
    if spec.affinity is not None:
        pod["affinity"] = spec.affinity.to_wire()
    return pod


def _container(
    spec: AgentSpec, envs: list[SecretEnv], settings: OperatorSettings, image: str
) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": naming.CONTAINER,
        "image": image,
        "imagePullPolicy": settings.image_pull_policy,
        "command": ["corral"],
        "args": ["runtime", "--config", naming.CONFIG_PATH, "--port", str(groups.RUNTIME_PORT)],
        "ports": [
            {"name": naming.PORT_NAME, "containerPort": groups.RUNTIME_PORT, "protocol": "TCP"}
        ],
        "startupProbe": _probe("/healthz", period=2, failures=30),
        "livenessProbe": _probe("/healthz", period=10, failures=3),
        "readinessProbe": _probe("/readyz", period=5, failures=2),
        "resources": _resources(spec, settings),
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "privileged": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "volumeMounts": [
            {"name": CONFIG_VOLUME, "mountPath": naming.CONFIG_DIR, "readOnly": True},
            {"name": TMP_VOLUME, "mountPath": "/tmp"},
        ],
    }
    if settings.pre_stop_seconds:
        # Endpoints drop a terminating pod asynchronously; until they have, Services may still
        # route to it. Sleeping first keeps the runtime serving through that window, then
        # SIGTERM starts its drain. The sleep action needs no binary in the image.
        container["lifecycle"] = {"preStop": {"sleep": {"seconds": settings.pre_stop_seconds}}}
    env: list[dict[str, Any]] = [
        {"name": k, "value": v} for k, v in sorted(otel_env(spec, settings).items())
    ]
    env += [
        {"name": e.env, "valueFrom": {"secretKeyRef": {"name": e.secret, "key": e.key}}}
        for e in envs
    ]
    if env:
        container["env"] = env
    return container


def otel_env(spec: AgentSpec, settings: OperatorSettings) -> dict[str, str]:
    """The OTEL_* variables of the runtime: the chart's, with the Agent's tracing on top."""
    env = dict(settings.runtime_otel_env)
    if spec.tracing is not None:
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = spec.tracing.otlp_endpoint
        if spec.tracing.service_name is not None:
            env["OTEL_SERVICE_NAME"] = spec.tracing.service_name
    return env


def _probe(path: str, period: int, failures: int) -> dict[str, Any]:
    return {
        "httpGet": {"path": path, "port": naming.PORT_NAME},
        "periodSeconds": period,
        "timeoutSeconds": 2,
        "failureThreshold": failures,
    }


def _resources(spec: AgentSpec, settings: OperatorSettings) -> dict[str, Any]:
    """The Agent's resources where set, the operator's defaults where not (per section)."""
    defaults = settings.default_resources
    own = spec.resources
    requests = own.requests if own is not None and own.requests is not None else defaults.requests
    limits = own.limits if own is not None and own.limits is not None else defaults.limits
    resources: dict[str, Any] = {}
    if requests:
        resources["requests"] = dict(requests)
    if limits:
        resources["limits"] = dict(limits)
    return resources
