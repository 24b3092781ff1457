"""Derive status from observations: conditions, rollout state, Events to post. Pure.

Called by `reconciling` (Agents) and `referenced` (Personas, Tools). Follows the API
conventions and kstatus: `observedGeneration`, a `Ready` condition that is True only when the
Deployment of this generation is fully rolled out and available, `Reconciling`/`Stalled`
present only while they are True, and `lastTransitionTime` kept while a status stays the same.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from corral.operator import errors, naming

READY = "Ready"
REFERENCES_RESOLVED = "ReferencesResolved"
RECONCILING = "Reconciling"
STALLED = "Stalled"
MCP_TOOLS_OFFERED = "MCPToolsOffered"

Phase = Literal["Available", "ScaledToZero", "RollingOut", "Failed"]


@dataclasses.dataclass(frozen=True)
class Rollout:
    """The Deployment's rollout, as kstatus reads a Deployment."""

    phase: Phase
    reason: str
    message: str
    replicas: int | None = None
    ready_replicas: int | None = None
    updated_replicas: int | None = None
    available_replicas: int | None = None
    current_replicas: int | None = None


@dataclasses.dataclass(frozen=True)
class Scaling:
    """The HorizontalPodAutoscaler's view: pods now and pods it wants."""

    current: int
    desired: int


def scaling(hpa: Mapping[str, Any] | None) -> Scaling | None:
    """What the Agent's HPA last decided, or None without an HPA (or before its first look)."""
    status = (hpa or {}).get("status") or {}
    if "desiredReplicas" not in status:
        return None
    return Scaling(int(status.get("currentReplicas", 0)), int(status["desiredReplicas"]))


def rollout(deployment: Mapping[str, Any] | None, config_hash: str | None) -> Rollout:
    """Where the Deployment stands for the pod template carrying `config_hash`."""
    if deployment is None:
        return Rollout("RollingOut", "RollingOut", "the Deployment does not exist yet")
    meta, spec, status = (deployment.get(k) or {} for k in ("metadata", "spec", "status"))
    name = meta.get("name")
    want = int(spec.get("replicas", 1))
    counts = {
        "replicas": want,
        "ready_replicas": int(status.get("readyReplicas", 0)),
        "updated_replicas": int(status.get("updatedReplicas", 0)),
        "available_replicas": int(status.get("availableReplicas", 0)),
        "current_replicas": int(status.get("replicas", 0)),
    }
    template = ((spec.get("template") or {}).get("metadata") or {}).get("annotations") or {}

    def rolling(message: str) -> Rollout:
        return Rollout("RollingOut", "RollingOut", f"Deployment {name!r}: {message}", **counts)

    if int(status.get("observedGeneration", 0)) < int(meta.get("generation", 0)):
        return rolling("waiting for the Deployment controller to observe the new spec")
    if config_hash is not None and template.get(naming.CONFIG_HASH) != config_hash:
        return rolling("the pod template does not carry the current config yet")
    progressing = _condition(status.get("conditions"), "Progressing")
    if progressing and progressing.get("reason") == "ProgressDeadlineExceeded":
        message = f"Deployment {name!r}: {progressing.get('message', 'progress deadline exceeded')}"
        return Rollout("Failed", "ProgressDeadlineExceeded", message, **counts)
    if counts["updated_replicas"] < want:
        return rolling(f"{counts['updated_replicas']} of {want} pods updated")
    if int(status.get("replicas", 0)) > counts["updated_replicas"]:
        old = int(status.get("replicas", 0)) - counts["updated_replicas"]
        return rolling(f"{old} old pods terminating")
    if counts["available_replicas"] < want:
        return rolling(f"{counts['available_replicas']} of {want} pods available")
    if want == 0:
        return Rollout(
            "ScaledToZero", "ScaledToZero", f"Deployment {name!r} is scaled to zero", **counts
        )
    message = f"Deployment {name!r}: {counts['available_replicas']} of {want} pods available"
    return Rollout("Available", "Available", message, **counts)


@dataclasses.dataclass(frozen=True)
class Observation:
    """Everything one reconcile learned about an Agent."""

    generation: int
    failure: errors.OperatorError | None = None
    references_resolved: bool | None = None
    rollout: Rollout | None = None
    endpoint: str | None = None
    config_hash: str | None = None
    mcp_not_offered: tuple[str, ...] | None = None
    """Allow-listed MCP tools (`server/tool`) not listed by their server; None: no MCP."""
    scaling: Scaling | None = None


def agent_status(seen: Observation, previous: Mapping[str, Any] | None, now: str) -> dict[str, Any]:
    """The Agent's status for `seen`; fields not learned this time keep their previous values."""
    previous = previous or {}
    conditions = _agent_conditions(seen)
    status: dict[str, Any] = {
        "observedGeneration": seen.generation,
        "conditions": merge_conditions(
            previous.get("conditions"), conditions, seen.generation, now
        ),
    }
    endpoint = seen.endpoint or previous.get("endpoint")
    config_hash = seen.config_hash or previous.get("configHash")
    if endpoint:
        status["endpoint"] = endpoint
    if config_hash:
        status["configHash"] = config_hash
    if seen.rollout is not None and seen.rollout.replicas is not None:
        status |= {
            "replicas": seen.rollout.replicas,
            "readyReplicas": seen.rollout.ready_replicas,
            "updatedReplicas": seen.rollout.updated_replicas,
            "availableReplicas": seen.rollout.available_replicas,
        }
    else:
        for key in ("replicas", "readyReplicas", "updatedReplicas", "availableReplicas"):
            if key in previous:
                status[key] = previous[key]
    # Current: the pods the Deployment has now; desired: the HPA's latest decision (without
    # an HPA, the Deployment's spec). Each keeps its previous value when not observed.
    roll = seen.rollout if seen.rollout is not None and seen.rollout.replicas is not None else None
    current = roll.current_replicas if roll is not None else None
    if current is None and seen.scaling is not None:
        current = seen.scaling.current
    desired = seen.scaling.desired if seen.scaling is not None else None
    if desired is None and roll is not None:
        desired = roll.replicas
    for key, value in (("currentReplicas", current), ("desiredReplicas", desired)):
        if value is not None:
            status[key] = value
        elif key in previous:
            status[key] = previous[key]
    return status


def initial_agent_status(
    generation: int, previous: Mapping[str, Any] | None, now: str
) -> dict[str, Any] | None:
    """`Ready=Unknown` for an Agent seen for the first time; None when it has a Ready already."""
    if _condition((previous or {}).get("conditions"), READY) is not None:
        return None
    conditions = [
        (READY, "Unknown", "Reconciling", "the operator is reconciling this Agent"),
        (RECONCILING, "True", "Reconciling", "the operator is reconciling this Agent"),
    ]
    return {
        **(previous or {}),
        "observedGeneration": generation,
        "conditions": merge_conditions(None, conditions, generation, now),
    }


def _agent_conditions(seen: Observation) -> list[tuple[str, str, str, str]]:
    conditions: list[tuple[str, str, str, str]] = []
    failure = seen.failure
    if seen.references_resolved is True:
        conditions.append((REFERENCES_RESOLVED, "True", "Resolved", "all references resolved"))
    elif seen.references_resolved is False and failure is not None:
        conditions.append((REFERENCES_RESOLVED, "False", failure.reason, str(failure)))
    if failure is not None:
        message = str(failure)
        conditions.append((READY, "False", failure.reason, message))
        if failure.permanent:
            conditions.append((STALLED, "True", failure.reason, message))
        else:
            conditions.append((RECONCILING, "True", failure.reason, f"retrying: {message}"))
        return conditions
    conditions.extend(_mcp_conditions(seen.mcp_not_offered))
    roll = seen.rollout or rollout(None, None)
    if roll.phase in ("Available", "ScaledToZero"):
        conditions.append((READY, "True", roll.reason, roll.message))
    elif roll.phase == "Failed":
        conditions.append((READY, "False", roll.reason, roll.message))
        conditions.append((STALLED, "True", roll.reason, roll.message))
    else:
        conditions.append((READY, "False", roll.reason, roll.message))
        conditions.append((RECONCILING, "True", roll.reason, roll.message))
    return conditions


def _mcp_conditions(not_offered: tuple[str, ...] | None) -> list[tuple[str, str, str, str]]:
    """MCPToolsOffered: False (ToolNotOffered) while an allow-listed tool is not listed by its
    MCPServer. The Agent still rolls out and serves every other tool: Ready is unaffected."""
    if not_offered is None:
        return []
    if not not_offered:
        return [(MCP_TOOLS_OFFERED, "True", "Offered", "every allow-listed MCP tool is offered")]
    shown = ", ".join(not_offered[:20])
    message = f"allow-listed but not offered by their MCPServer: {shown}"
    return [(MCP_TOOLS_OFFERED, "False", "ToolNotOffered", message)]


def referenced_status(
    generation: int,
    used_by: Sequence[str],
    problem: tuple[str, str] | None,
    previous: Mapping[str, Any] | None,
    now: str,
) -> dict[str, Any]:
    """Status of a Persona or Tool: Ready (False with `problem`) and the Agents using it.

    An invalid spec is also `Stalled`: only a change to the spec can fix it, and kstatus
    (Flux, Helm 4 --wait) reads Stalled as Failed instead of waiting for its timeout. A
    missing Agent behind an agent Tool is not: it heals by itself when the Agent appears."""
    ready = ("False", *problem) if problem else ("True", "Valid", "the spec is valid")
    conditions = [(READY, *ready)]
    if problem and problem[0] == errors.InvalidSpec.reason:
        conditions.append((STALLED, "True", *problem))
    status: dict[str, Any] = {
        "observedGeneration": generation,
        "conditions": merge_conditions(
            (previous or {}).get("conditions"), conditions, generation, now
        ),
    }
    if used_by:
        status["usedBy"] = sorted(set(used_by))
    return status


def merge_conditions(
    previous: Sequence[Mapping[str, Any]] | None,
    current: Sequence[tuple[str, str, str, str]],
    generation: int,
    now: str,
) -> list[dict[str, Any]]:
    """metav1.Conditions for `current` (type, status, reason, message), in that order.

    A condition whose status did not change keeps its lastTransitionTime; conditions not in
    `current` are dropped (Reconciling and Stalled exist only while True).
    """
    merged = []
    for type_, status, reason, message in current:
        before = _condition(previous, type_)
        since = before["lastTransitionTime"] if before and before.get("status") == status else now
        merged.append(
            {
                "type": type_,
                "status": status,
                "reason": reason,
                "message": message,
                "lastTransitionTime": since,
                "observedGeneration": generation,
            }
        )
    return merged


def merge_patch(previous: Mapping[str, Any] | None, desired: Mapping[str, Any]) -> dict[str, Any]:
    """A JSON merge patch turning status `previous` into `desired` (removed keys -> null)."""
    patch: dict[str, Any] = {key: None for key in (previous or {}) if key not in desired}
    return patch | dict(desired)


def only_progress(previous: Mapping[str, Any] | None, status: Mapping[str, Any]) -> bool:
    """True when `status` differs from `previous` only by how far a rollout has got (messages,
    replica counts) while the Agent stays RollingOut: not worth a write. Every change of a
    condition's status or reason, of the generation, or anything while Ready is True, is."""
    previous = previous or {}

    def shape(s: Mapping[str, Any]) -> Any:
        conditions = [
            (c.get("type"), c.get("status"), c.get("reason")) for c in s.get("conditions") or []
        ]
        same = {k: v for k, v in s.items() if k not in _PROGRESS}
        return conditions, same

    rolling = ready_of(previous) == ready_of(status) == ("False", "RollingOut")
    return rolling and shape(previous) == shape(status)


_PROGRESS = frozenset(
    {
        "conditions",
        "replicas",
        "readyReplicas",
        "updatedReplicas",
        "availableReplicas",
        "currentReplicas",
        "desiredReplicas",
    }
)


def first_rollout(previous: Mapping[str, Any] | None, status: Mapping[str, Any]) -> bool:
    """True when `status` would be a new Agent's first, saying only that its first rollout
    is under way: worth holding back briefly, as the rollout may be done by then."""
    return not (previous or {}).get("conditions") and ready_of(status) == ("False", "RollingOut")


def ready_of(status: Mapping[str, Any] | None) -> tuple[str, str] | None:
    """(status, reason) of the Ready condition, if any."""
    condition = _condition((status or {}).get("conditions"), READY)
    return None if condition is None else (condition.get("status", ""), condition.get("reason", ""))


def transition_event(
    previous: Mapping[str, Any] | None, current: Mapping[str, Any]
) -> tuple[Literal["Normal", "Warning"], str, str] | None:
    """(type, reason, message) of the Event to post when Ready changed, else None.

    A rollout ending as announced (RollingOut -> Available) posts none: the Event of the write
    that started it and the Ready condition's lastTransitionTime already tell it, and one Event
    per Agent is one request per Agent. A recovery from a failure is an Event."""
    before, after = ready_of(previous), ready_of(current)
    if after is None or before == after or after[0] == "Unknown":
        return None
    if before == ("False", "RollingOut") and after[0] == "True":
        return None
    condition = _condition(current.get("conditions"), READY) or {}
    if after[0] == "True" or after[1] == "RollingOut":
        return "Normal", after[1], str(condition.get("message", ""))
    return "Warning", after[1], str(condition.get("message", ""))


def _condition(conditions: Any, type_: str) -> Mapping[str, Any] | None:
    for condition in conditions or []:
        if isinstance(condition, Mapping) and condition.get("type") == type_:
            return condition
    return None
