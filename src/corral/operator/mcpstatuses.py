"""The status of an MCPServer from its last discovery: Ready, the tools, the Agents using it.

Pure. Called by `mcpservers` after each discovery. `Ready` is True with reason `Discovered`
when the handshake and tools/list worked, else False with `Unreachable`, `AuthFailed`,
`HandshakeFailed`, `MissingReference` (a Secret of headersFrom) or `InvalidSpec`. A failed
discovery keeps the tools listed last (they are still what the server offered when it last
answered). Nothing here changes unless the server's answer does, so a periodic discovery of
an unchanged server writes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from corral.api.mcpservers import MAX_STATUS_TOOLS, MAX_TOOL_DESCRIPTION, MAX_TOOL_NAME
from corral.operator import statuses
from corral.operator.discovering import Discovery


def desired(
    generation: int,
    outcome: Discovery,
    used_by: Sequence[str],
    previous: Mapping[str, Any] | None,
    now: str,
) -> dict[str, Any]:
    """The whole status for `outcome`; see the module docstring."""
    previous = previous or {}
    ready = ("True" if outcome.ok else "False", outcome.reason, outcome.message)
    conditions = [(statuses.READY, *ready)]
    if outcome.reason == "InvalidSpec":
        conditions.append((statuses.STALLED, "True", outcome.reason, outcome.message))
    status: dict[str, Any] = {
        "observedGeneration": generation,
        "conditions": statuses.merge_conditions(
            previous.get("conditions"), conditions, generation, now
        ),
    }
    if outcome.tools is not None:
        status["tools"] = tools_of(outcome)
        status["toolCount"] = len(outcome.tools)
    elif "tools" in previous:
        status["tools"] = previous["tools"]
        status["toolCount"] = previous.get("toolCount", len(previous["tools"]))
    if used_by:
        status["usedBy"] = sorted(set(used_by))
    return status


def tools_of(outcome: Discovery) -> list[dict[str, str]]:
    """The listed tools as status shows them: by name, bounded in number and length."""
    listed = sorted(outcome.tools or (), key=lambda tool: tool.name)[:MAX_STATUS_TOOLS]
    shown = []
    for tool in listed:
        entry = {"name": tool.name[:MAX_TOOL_NAME]}
        description = (tool.description or "").strip()
        if description:
            entry["description"] = description[:MAX_TOOL_DESCRIPTION]
        shown.append(entry)
    return shown


def tool_names(status: Mapping[str, Any] | None) -> list[str]:
    """The tool names of a status (what an Agent's allow-list is checked against)."""
    return [str(tool.get("name")) for tool in (status or {}).get("tools") or []]
