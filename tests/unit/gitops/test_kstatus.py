"""What kstatus — the library behind Helm 4 `--wait` and Flux health checks — says of an Agent.

Runs the real fluxcd/cli-utils kstatus (built from hack/gomod/kstatus on first use) on Agent,
Persona and Tool objects carrying the statuses the operator writes.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import gitops_objects as objects
import pytest

import kstatus

Verdict = Callable[[dict[str, Any]], dict[str, str]]


@pytest.fixture(scope="module")
def verdict() -> Verdict:
    binary: Path = kstatus.ensure()

    def compute(obj: dict[str, Any]) -> dict[str, str]:
        return kstatus.compute(binary, obj)

    return compute


def test_agent_rolled_out_at_the_current_generation_is_current(verdict: Verdict) -> None:
    assert verdict(objects.agent(objects.available()))["status"] == "Current"


def test_agent_rolling_out_is_in_progress(verdict: Verdict) -> None:
    assert verdict(objects.agent(objects.rolling_out())) == {
        "status": "InProgress",
        "message": "Deployment 'support': 1 of 2 pods updated",
    }


def test_agent_ready_false_rolling_out_without_reconciling_is_in_progress(
    verdict: Verdict,
) -> None:
    status = objects.without(objects.rolling_out(), "Reconciling")
    assert verdict(objects.agent(status))["status"] == "InProgress"


def test_agent_seen_for_the_first_time_is_in_progress(verdict: Verdict) -> None:
    assert verdict(objects.agent(objects.first_seen()))["status"] == "InProgress"


def test_agent_whose_observed_generation_lags_is_in_progress_despite_ready(
    verdict: Verdict,
) -> None:
    result = verdict(objects.agent(objects.available(generation=2), generation=3))
    assert result == {
        "status": "InProgress",
        "message": "Agent generation is 3, but latest observed generation is 2",
    }


def test_stalled_agent_is_failed_with_the_stalled_message(verdict: Verdict) -> None:
    status = objects.invalid_spec()
    assert verdict(objects.agent(status)) == {
        "status": "Failed",
        "message": objects.condition(status, "Stalled")["message"],
    }


def test_agent_past_its_progress_deadline_is_failed(verdict: Verdict) -> None:
    status = objects.observed(objects.past_progress_deadline())
    assert verdict(objects.agent(status))["status"] == "Failed"


def test_agent_missing_a_reference_is_in_progress_while_the_operator_retries(
    verdict: Verdict,
) -> None:
    # Not Stalled: the Agent heals by itself once the Persona appears, so `helm --wait` and
    # Flux keep waiting (until their timeout) instead of failing at once.
    status = objects.missing_persona()
    assert verdict(objects.agent(status)) == {
        "status": "InProgress",
        "message": "retrying: not found: Persona 'support-tone'",
    }


@pytest.mark.parametrize("kind", ["Persona", "Tool"])
def test_valid_persona_or_tool_is_current(verdict: Verdict, kind: str) -> None:
    assert verdict(objects.referenced(kind))["status"] == "Current"


@pytest.mark.parametrize("kind", ["Persona", "Tool"])
def test_persona_or_tool_whose_observed_generation_lags_is_in_progress(
    verdict: Verdict, kind: str
) -> None:
    obj = objects.referenced(kind, observed_generation=objects.GENERATION - 1)
    assert verdict(obj)["status"] == "InProgress"


def test_agent_without_status_reads_as_current_which_is_why_the_crd_defaults_one(
    verdict: Verdict,
) -> None:
    # kstatus's own rule. The CRDs default status.observedGeneration to 0, so the API server
    # never returns an Agent without one (tests/integration/gitops proves it end to end).
    assert verdict(objects.agent(None))["status"] == "Current"
    assert verdict(objects.agent({"observedGeneration": 0}))["status"] == "InProgress"


@pytest.mark.parametrize("kind", ["Persona", "Tool"])
def test_invalid_persona_or_tool_is_stalled_and_reads_as_failed(
    verdict: Verdict, kind: str
) -> None:
    problem = ("InvalidSpec", "spec.parameters is not a valid JSON Schema")
    assert verdict(objects.referenced(kind, problem=problem)) == {
        "status": "Failed",
        "message": problem[1],
    }
