"""Agent, Persona and Tool objects as the API server returns them, for the GitOps health tests.

Statuses come from the operator's own pure status functions (`corral.operator.statuses`), so
the Argo CD and kstatus tests read exactly what the operator writes; a change in the operator's
conditions shows up here. The runtime Deployments are shaped as apps/v1 reports them. Pure.
"""

from __future__ import annotations

import copy
from typing import Any

from corral.operator import errors, naming, statuses

NOW = "2026-01-05T10:00:00Z"
NAMESPACE = "shop"
CONFIG_HASH = "3f1c9a7e"
GENERATION = 3


def agent(status: dict[str, Any] | None, generation: int = GENERATION) -> dict[str, Any]:
    """An Agent at `generation` carrying `status` (None: the operator has not written one)."""
    obj: dict[str, Any] = {
        "apiVersion": "corral.dev/v1alpha1",
        "kind": "Agent",
        "metadata": {
            "name": "support",
            "namespace": NAMESPACE,
            "uid": "6c0b1f0e-4f7e-4a8e-9a57-2f3c1d7b9e10",
            "resourceVersion": "4711",
            "generation": generation,
            "creationTimestamp": "2026-01-05T09:58:00Z",
        },
        "spec": {
            "personaRef": {"name": "support-tone"},
            "model": {"provider": "openai", "name": "gpt-4o-mini"},
            "tools": [{"name": "order-lookup"}],
            "replicas": 2,
        },
    }
    if status is not None:
        obj["status"] = status
    return obj


def deployment(updated: int, available: int, replicas: int = 2) -> dict[str, Any]:
    """The Agent's runtime Deployment with the current config, `updated`/`available` pods."""
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": naming.deployment("support"), "namespace": NAMESPACE, "generation": 5},
        "spec": {
            "replicas": replicas,
            "template": {"metadata": {"annotations": {naming.CONFIG_HASH: CONFIG_HASH}}},
        },
        "status": {
            "observedGeneration": 5,
            "replicas": max(replicas, updated),
            "updatedReplicas": updated,
            "readyReplicas": available,
            "availableReplicas": available,
        },
    }


def past_progress_deadline() -> dict[str, Any]:
    """A Deployment whose new pods never became available within progressDeadlineSeconds."""
    stuck = deployment(updated=1, available=0)
    stuck["status"]["conditions"] = [
        {
            "type": "Progressing",
            "status": "False",
            "reason": "ProgressDeadlineExceeded",
            "message": 'ReplicaSet "support-7d9f" has timed out progressing.',
        }
    ]
    return stuck


def observed(
    runtime: dict[str, Any] | None = None,
    failure: errors.OperatorError | None = None,
    generation: int = GENERATION,
) -> dict[str, Any]:
    """The status the operator writes after observing `runtime` or failing with `failure`."""
    seen = statuses.Observation(
        generation=generation,
        failure=failure,
        references_resolved=not isinstance(failure, errors.MissingReference),
        rollout=None if failure else statuses.rollout(runtime, CONFIG_HASH),
        endpoint=naming.endpoint("support", NAMESPACE),
        config_hash=CONFIG_HASH,
    )
    return statuses.agent_status(seen, None, NOW)


def available(generation: int = GENERATION) -> dict[str, Any]:
    """The Agent's status once its Deployment is fully rolled out and available."""
    return observed(deployment(updated=2, available=2), generation=generation)


def rolling_out() -> dict[str, Any]:
    """The Agent's status while one of two pods runs the new config."""
    return observed(deployment(updated=1, available=1))


def first_seen() -> dict[str, Any]:
    """The status the operator writes when it first sees the Agent (Ready Unknown)."""
    status = statuses.initial_agent_status(GENERATION, None, NOW)
    assert status is not None
    return status


def missing_persona() -> dict[str, Any]:
    """The Agent's status while its Persona does not exist."""
    return observed(failure=errors.MissingReference([errors.Reference("Persona", "support-tone")]))


def invalid_spec() -> dict[str, Any]:
    """The Agent's status when its spec is a combination the schema cannot reject."""
    return observed(failure=errors.InvalidSpec("tool 'order-lookup' calls this Agent itself"))


def condition(status: dict[str, Any], type_: str) -> dict[str, Any]:
    """The condition `type_` of `status` (fails the test when it is absent)."""
    found = [c for c in status["conditions"] if c["type"] == type_]
    assert found, f"no {type_} condition in {status}"
    return dict(found[0])


def without(status: dict[str, Any], type_: str) -> dict[str, Any]:
    """A copy of `status` without the condition `type_`."""
    trimmed = copy.deepcopy(status)
    trimmed["conditions"] = [c for c in trimmed["conditions"] if c["type"] != type_]
    return trimmed


def referenced(
    kind: str, problem: tuple[str, str] | None = None, observed_generation: int = GENERATION
) -> dict[str, Any]:
    """A Persona or Tool at GENERATION whose status the operator wrote at `observed_generation`."""
    return {
        "apiVersion": "corral.dev/v1alpha1",
        "kind": kind,
        "metadata": {"name": "order-lookup", "namespace": NAMESPACE, "generation": GENERATION},
        "spec": {"description": "Look up an order by id"},
        "status": statuses.referenced_status(observed_generation, ["support"], problem, None, NOW),
    }
