"""Helpers for the real-pod tests: manifests, applying, waiting, and reading pods and Services.

Everything goes through the pinned kubectl, the way a user drives the cluster. Does I/O.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import yaml

from corral.operator import naming
from localcluster import handles, probes

API = "corral.dev/v1alpha1"


@dataclasses.dataclass(frozen=True)
class Release:
    """The chart installed by the `release` fixture."""

    name: str
    namespace: str  # the operator's
    watched: str  # the Agents'


@dataclasses.dataclass(frozen=True)
class PodModel:
    """A model server on this host, and its OpenAI base URL as pods use it."""

    base_url: str


def persona(name: str, prompt: str) -> dict[str, Any]:
    return {
        "apiVersion": API,
        "kind": "Persona",
        "metadata": {"name": name},
        "spec": {"systemPrompt": prompt},
    }


def agent(name: str, base_url: str, model: str = "gemma-3-270m", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": API,
        "kind": "Agent",
        "metadata": {"name": name},
        "spec": {
            "model": {"provider": "openai", "name": model, "baseURL": base_url, "maxTokens": 24},
            "replicas": 1,
            **spec,
        },
    }


def apply(cluster: handles.Cluster, namespace: str, *documents: dict[str, Any]) -> None:
    cluster.kubectl(
        "apply", "--server-side", "-n", namespace, "-f", "-",
        input=yaml.safe_dump_all(documents, sort_keys=False),
    )  # fmt: skip


def get(cluster: handles.Cluster, namespace: str, *what: str) -> Any:
    return json.loads(cluster.kubectl("get", "-n", namespace, *what, "-o", "json").stdout)


def wait_ready(cluster: handles.Cluster, namespace: str, name: str, timeout: int = 240) -> None:
    """The Agent Ready, and then its Service routable: Ready follows the Deployment, and
    kube-proxy programs the Service's new endpoints a moment later (as on any cluster)."""
    cluster.kubectl(
        "wait", "--for=condition=Ready", f"agent/{name}", "-n", namespace, f"--timeout={timeout}s"
    )
    models = f"{service_url(cluster, namespace, name)}/models"
    probes.wait_for(f"{models} answering", lambda: probes.healthy(models), timeout=60)


def pods(cluster: handles.Cluster, namespace: str, agent_name: str) -> list[dict[str, Any]]:
    """The Agent's pods that are not terminating."""
    selector = ",".join(f"{k}={v}" for k, v in naming.selector_labels(agent_name).items())
    found = get(cluster, namespace, "pods", "-l", selector)["items"]
    return [p for p in found if not p["metadata"].get("deletionTimestamp")]


def condition(obj: dict[str, Any], kind: str) -> dict[str, Any]:
    for found in obj.get("status", {}).get("conditions") or []:
        if found["type"] == kind:
            return dict(found)
    raise AssertionError(f"no {kind} condition in {obj.get('status')}")


def is_ready(obj: dict[str, Any]) -> bool:
    """Whether `obj` (a pod or an Agent) has a Ready=True condition (False before it has any)."""
    conditions = obj.get("status", {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def service_url(cluster: handles.Cluster, namespace: str, name: str) -> str:
    """The Agent's Service by its ClusterIP: this host reaches it through kube-proxy's rules,
    as any client in the cluster does."""
    service = get(cluster, namespace, "service", name)
    port = service["spec"]["ports"][0]["port"]
    return f"http://{service['spec']['clusterIP']}:{port}/v1"


def exec_in(cluster: handles.Cluster, namespace: str, pod: str, *argv: str) -> str:
    return cluster.kubectl("exec", "-n", namespace, pod, "--", *argv).stdout


def agent_events(cluster: handles.Cluster, namespace: str, name: str) -> str:
    """What went wrong, for failure messages: the Agent's status and its pods' states."""
    status = get(cluster, namespace, "agent", name).get("status")
    pod_states = [
        (p["metadata"]["name"], p["status"].get("phase"), p["status"].get("containerStatuses"))
        for p in get(cluster, namespace, "pods")["items"]
    ]
    return f"agent status: {status}\npods: {pod_states}"
