"""The Argo CD health checks in deploy/gitops/argocd, run the way Argo CD runs them.

Argo CD evaluates a health.lua with gopher-lua (Lua 5.1), only the base, package, table, string
and math libraries open, the live object converted to a global `obj` table; the script returns
{status = ..., message = ...}. `health` does the same with lupa's Lua 5.1.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gitops_objects as objects
import lupa.lua51
import pytest
import yaml

from corral.operator import errors

ARGOCD = Path(__file__).resolve().parents[3] / "deploy" / "gitops" / "argocd"
KINDS = ("Agent", "Persona", "Tool")
ARGO_HEALTH_STATUSES = {"Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown"}
# What gopher-lua has that Argo CD does not open (it preloads a safe `os` only for require).
UNAVAILABLE = ("io", "os", "debug", "dofile", "loadfile", "require")


def script(kind: str) -> str:
    return (ARGOCD / "corral.dev" / kind / "health.lua").read_text()


def health(obj: dict[str, Any]) -> dict[str, str]:
    """The {status, message} Argo CD computes for `obj` with the script for its kind."""
    lua = lupa.lua51.LuaRuntime(register_eval=False, register_builtins=False)
    sandbox = lua.globals()
    for name in UNAVAILABLE:
        sandbox[name] = None
    sandbox.obj = lua.table_from(obj, recursive=True)
    result = lua.execute(script(obj["kind"]))
    assert lupa.lua51.lua_type(result) == "table", f"the script returned {result!r}, not a table"
    verdict = {"status": result["status"], "message": result["message"]}
    assert verdict["status"] in ARGO_HEALTH_STATUSES, verdict
    assert isinstance(verdict["message"], str), verdict
    return verdict


def test_agent_rolled_out_at_the_current_generation_is_healthy() -> None:
    verdict = health(objects.agent(objects.available()))
    assert verdict == {
        "status": "Healthy",
        "message": "Deployment 'support': 2 of 2 pods available",
    }


def test_agent_without_status_is_progressing() -> None:
    assert health(objects.agent(None))["status"] == "Progressing"


def test_agent_seen_for_the_first_time_is_progressing() -> None:
    assert health(objects.agent(objects.first_seen()))["status"] == "Progressing"


def test_agent_rolling_out_is_progressing_with_the_rollout_message() -> None:
    verdict = health(objects.agent(objects.rolling_out()))
    assert verdict == {
        "status": "Progressing",
        "message": "Deployment 'support': 1 of 2 pods updated",
    }


def test_agent_ready_false_rolling_out_without_reconciling_is_still_progressing() -> None:
    status = objects.without(objects.rolling_out(), "Reconciling")
    assert health(objects.agent(status))["status"] == "Progressing"


def test_agent_whose_new_generation_is_not_observed_yet_is_progressing_despite_ready() -> None:
    verdict = health(objects.agent(objects.available(generation=2), generation=3))
    assert verdict == {
        "status": "Progressing",
        "message": "Waiting for the Corral operator to observe generation 3",
    }


def test_agent_whose_ready_condition_describes_an_older_generation_is_progressing() -> None:
    status = objects.available()
    status["conditions"] = [
        {**c, "observedGeneration": objects.GENERATION - 1} for c in status["conditions"]
    ]
    assert health(objects.agent(status))["status"] == "Progressing"


def test_agent_ready_unknown_without_reconciling_is_progressing() -> None:
    status = objects.without(objects.first_seen(), "Reconciling")
    assert objects.condition(status, "Ready")["status"] == "Unknown"
    assert health(objects.agent(status))["status"] == "Progressing"


def test_stalled_agent_is_degraded_with_the_stalled_message() -> None:
    status = objects.invalid_spec()
    verdict = health(objects.agent(status))
    assert verdict == {
        "status": "Degraded",
        "message": objects.condition(status, "Stalled")["message"],
    }
    assert "calls this Agent itself" in verdict["message"]


def test_stalled_wins_over_a_ready_condition_that_still_says_rolling_out() -> None:
    status = objects.invalid_spec()
    ready = objects.condition(status, "Ready") | {"reason": "RollingOut", "message": "1 of 2"}
    status = objects.without(status, "Ready")
    status["conditions"].append(ready)
    verdict = health(objects.agent(status))
    assert verdict == {
        "status": "Degraded",
        "message": objects.condition(status, "Stalled")["message"],
    }


def test_agent_reconciling_while_ready_is_still_true_is_progressing() -> None:
    status = objects.available()
    reconciling = objects.condition(objects.rolling_out(), "Reconciling")
    status["conditions"].append(reconciling)
    verdict = health(objects.agent(status))
    assert verdict == {"status": "Progressing", "message": reconciling["message"]}


def test_agent_past_its_progress_deadline_is_degraded() -> None:
    status = objects.observed(objects.past_progress_deadline())
    verdict = health(objects.agent(status))
    assert verdict["status"] == "Degraded"
    assert "timed out progressing" in verdict["message"]


def test_agent_missing_a_reference_is_degraded_although_the_operator_keeps_retrying() -> None:
    status = objects.missing_persona()
    assert objects.condition(status, "Reconciling")["status"] == "True"
    verdict = health(objects.agent(status))
    assert verdict == {"status": "Degraded", "message": "not found: Persona 'support-tone'"}


def test_degraded_message_falls_back_to_the_reason_when_the_condition_has_no_message() -> None:
    status = objects.missing_persona()
    for c in status["conditions"]:
        c.pop("message")
    verdict = health(objects.agent(status))
    assert verdict == {"status": "Degraded", "message": errors.MissingReference.reason}


@pytest.mark.parametrize("kind", ["Persona", "Tool"])
def test_valid_persona_or_tool_is_healthy(kind: str) -> None:
    assert health(objects.referenced(kind))["status"] == "Healthy"


@pytest.mark.parametrize("kind", ["Persona", "Tool"])
def test_invalid_persona_or_tool_is_degraded_with_the_ready_message(kind: str) -> None:
    problem = ("InvalidSpec", "spec.parameters is not a valid JSON Schema: 'objekt' is not valid")
    verdict = health(objects.referenced(kind, problem=problem))
    assert verdict == {"status": "Degraded", "message": problem[1]}


@pytest.mark.parametrize("kind", ["Persona", "Tool"])
def test_persona_or_tool_whose_new_generation_is_not_observed_yet_is_progressing(
    kind: str,
) -> None:
    obj = objects.referenced(kind, observed_generation=objects.GENERATION - 1)
    assert health(obj)["status"] == "Progressing"


@pytest.mark.parametrize("kind", ["Persona", "Tool"])
def test_persona_or_tool_without_status_is_progressing(kind: str) -> None:
    obj = objects.referenced(kind)
    del obj["status"]
    assert health(obj)["status"] == "Progressing"


def test_argocd_cm_patch_carries_exactly_the_health_lua_files() -> None:
    patch = yaml.safe_load((ARGOCD / "argocd-cm-patch.yaml").read_text())
    expected = {f"resource.customizations.health.corral.dev_{kind}": script(kind) for kind in KINDS}
    assert patch["kind"] == "ConfigMap"
    assert patch["metadata"]["name"] == "argocd-cm"
    assert patch["data"] == expected, (
        "argocd-cm-patch.yaml is stale: run `python deploy/gitops/argocd/generate.py`"
    )
