"""The manifests of the operator benchmark: a fleet of Agents sharing Personas and Tools, the
kwok nodes they run on, and the baseline (the same objects the operator would apply). Pure.

Agent i uses Persona `persona-(i % personas)` and two of the shared Tools, so one Persona is
used by agents/personas Agents (200 of 1,000 for the fan-out figure). Every pod goes to the
benchmark's own tainted kwok nodes, never to the shared node other tests use. Called by
`operator_suite`; returns dicts, no I/O.
"""

from __future__ import annotations

import copy
from typing import Any

API = "corral.dev/v1alpha1"
NODE_LABEL = "corral.dev/bench-node"
TAINT_KEY = "corral.dev/bench"
PODS_PER_NODE = 250
NODE_ANNOTATION = ("kwok.x-k8s.io/node", "fake")


def persona(index: int, prompt_version: int = 1) -> dict[str, Any]:
    return {
        "apiVersion": API,
        "kind": "Persona",
        "metadata": {"name": f"persona-{index}"},
        "spec": {
            "systemPrompt": f"You are support persona {index}, version {prompt_version}.",
            "description": "benchmark persona",
        },
    }


def tool(index: int) -> dict[str, Any]:
    return {
        "apiVersion": API,
        "kind": "Tool",
        "metadata": {"name": f"tool-{index}"},
        "spec": {
            "description": f"Look up record kind {index} by id",
            "parameters": {
                "type": "object",
                "properties": {"id": {"type": "string"}},
                "required": ["id"],
            },
            "http": {"url": f"http://records.bench.svc:8080/kind{index}/{{id}}", "method": "GET"},
        },
    }


def placement() -> dict[str, Any]:
    """What keeps a pod on the benchmark's nodes."""
    return {
        "nodeSelector": {NODE_LABEL: "true"},
        "tolerations": [{"key": TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"}],
    }


def agent(index: int, personas: int, tools: int) -> dict[str, Any]:
    return {
        "apiVersion": API,
        "kind": "Agent",
        "metadata": {"name": f"agent-{index:04d}"},
        "spec": {
            "personaRef": {"name": f"persona-{index % personas}"},
            "instructions": f"You are agent {index}.",
            "model": {
                "provider": "openai",
                "name": "fake-model",
                "baseURL": "http://models.bench.svc:8000/v1",
            },
            "tools": [{"name": f"tool-{index % tools}"}, {"name": f"tool-{(index + 1) % tools}"}],
            "rateLimit": {"requestsPerMinute": 600},
            **placement(),
        },
    }


def fleet(agents: int, personas: int, tools: int) -> list[dict[str, Any]]:
    """Personas and Tools first, then the Agents: the one document a user would apply."""
    return [
        *(persona(i) for i in range(personas)),
        *(tool(i) for i in range(tools)),
        *(agent(i, personas, tools) for i in range(agents)),
    ]


def users_of(persona_index: int, agents: int, personas: int) -> list[str]:
    """Names of the Agents whose Persona is `persona-<persona_index>`."""
    return [f"agent-{i:04d}" for i in range(agents) if i % personas == persona_index]


def node(index: int) -> dict[str, Any]:
    """A kwok-managed node only benchmark pods tolerate."""
    key, value = NODE_ANNOTATION
    capacity = {"cpu": "1000", "memory": "4Ti", "pods": str(PODS_PER_NODE)}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": f"bench-kwok-{index}",
            "annotations": {key: value, "node.alpha.kubernetes.io/ttl": "0"},
            "labels": {
                NODE_LABEL: "true",
                "type": "kwok",
                "kubernetes.io/hostname": f"bench-kwok-{index}",
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
            },
        },
        "spec": {"taints": [{"key": TAINT_KEY, "value": "only", "effect": "NoSchedule"}]},
        "status": {"allocatable": capacity, "capacity": capacity},
    }


def nodes_for(pods: int) -> int:
    return max(1, -(-pods // PODS_PER_NODE))


def baseline(rendered: list[dict[str, Any]], namespace: str) -> list[dict[str, Any]]:
    """The objects `corral render` printed, moved into `namespace`: what a perfect operator
    would apply (Deployments, Services and ConfigMaps; nothing else)."""
    kept = []
    for obj in rendered:
        if obj.get("kind") not in ("Deployment", "Service", "ConfigMap"):
            continue
        moved = copy.deepcopy(obj)
        moved["metadata"]["namespace"] = namespace
        kept.append(moved)
    return kept


def touched(deployment: dict[str, Any], mark: str) -> dict[str, Any]:
    """The baseline's stand-in for a Persona change: a new pod-template annotation, as the
    operator's config hash would be, applied with only the fields it owns."""
    meta = deployment["metadata"]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": meta["name"], "namespace": meta["namespace"]},
        "spec": {
            "selector": deployment["spec"]["selector"],
            "template": {
                "metadata": {
                    "labels": deployment["spec"]["template"]["metadata"]["labels"],
                    "annotations": {"corral.dev/bench-touch": mark},
                },
            },
        },
    }
