"""Status of Personas and Tools: `Ready` and the Agents that use them.

`desired` is pure; `refresh` patches `/status` through `kube.Kube` only when it differs from
the status of the body it is given, which must be the newest known (the watch cache overlaid
with the operator's own last write). Called by `reconciling` when a Persona or Tool is first
seen or its spec changes, when the Agents using it change, and at every drift check.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from pydantic import ValidationError

from corral.api import groups
from corral.api.tools import ToolSpec
from corral.operator import indexing, kube, naming, statuses


def problem(
    kind: str, body: Mapping[str, Any], agent_names: Collection[str]
) -> tuple[str, str] | None:
    """(reason, message) of what keeps the object from being usable, or None."""
    model = indexing.BY_REFERENCED[kind].spec
    try:
        spec = model.model_validate(body.get("spec") or {})
    except ValidationError as err:
        return "InvalidSpec", "; ".join(str(e["msg"]) for e in err.errors())
    name = str((body.get("metadata") or {}).get("name"))
    if isinstance(spec, ToolSpec):
        if naming.function_name(name) is None:
            return "InvalidSpec", "a tool's name must be at most 64 characters"
        if spec.agent is not None and spec.agent.name not in agent_names:
            return "MissingReference", f"Agent {spec.agent.name!r} not found"
    return None


def desired(
    kind: str,
    body: Mapping[str, Any],
    used_by: Collection[str],
    agent_names: Collection[str],
    now: str,
) -> dict[str, Any]:
    meta = body.get("metadata") or {}
    return statuses.referenced_status(
        generation=int(meta.get("generation") or 0),
        used_by=list(used_by),
        problem=problem(kind, body, agent_names),
        previous=body.get("status"),
        now=now,
    )


async def refresh(
    client: kube.Kube,
    kind: str,
    body: Mapping[str, Any],
    used_by: Collection[str],
    agent_names: Collection[str],
    now: str,
) -> dict[str, Any] | None:
    """Patch the status if it changed: the object as the API server answered, or None."""
    status = desired(kind, body, used_by, agent_names, now)
    previous = body.get("status") or {}
    if status == dict(previous):
        return None
    meta = body.get("metadata") or {}
    url = kube.path(groups.API_VERSION, kind, str(meta.get("namespace")), str(meta.get("name")))
    return await client.patch_status(kind, url, statuses.merge_patch(previous, status))
