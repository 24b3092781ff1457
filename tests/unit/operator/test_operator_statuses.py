"""Status derivation: rollout state, conditions (kstatus), transition times and Events."""

from __future__ import annotations

from typing import Any

import pytest

from corral.operator import errors, naming, statuses

NOW, LATER = "2026-01-01T00:00:00Z", "2026-01-01T00:05:00Z"


def deployment(
    want: int = 2,
    generation: int = 3,
    observed: int = 3,
    config_hash: str = "h1",
    **status: Any,
) -> dict[str, Any]:
    return {
        "metadata": {"name": "support", "generation": generation},
        "spec": {
            "replicas": want,
            "template": {"metadata": {"annotations": {naming.CONFIG_HASH: config_hash}}},
        },
        "status": {"observedGeneration": observed} | status,
    }


FULL = {"replicas": 2, "updatedReplicas": 2, "readyReplicas": 2, "availableReplicas": 2}


@pytest.mark.parametrize(
    ("live", "phase", "message_part"),
    [
        (None, "RollingOut", "does not exist"),
        (deployment(observed=2, **FULL), "RollingOut", "observe the new spec"),
        (deployment(config_hash="old", **FULL), "RollingOut", "current config"),
        (deployment(**(FULL | {"updatedReplicas": 1})), "RollingOut", "1 of 2 pods updated"),
        (deployment(**(FULL | {"replicas": 3})), "RollingOut", "1 old pods terminating"),
        (deployment(**(FULL | {"availableReplicas": 1})), "RollingOut", "1 of 2 pods available"),
        (deployment(want=0), "ScaledToZero", "scaled to zero"),
        (deployment(**FULL), "Available", "2 of 2 pods available"),
        (
            deployment(
                conditions=[
                    {
                        "type": "Progressing",
                        "status": "False",
                        "reason": "ProgressDeadlineExceeded",
                        "message": "timed out",
                    }
                ],
            ),
            "Failed",
            "timed out",
        ),
    ],
    ids=[
        "missing",
        "generation-not-observed",
        "old-template",
        "not-all-updated",
        "old-pods-left",
        "not-all-available",
        "scaled-to-zero",
        "available",
        "deadline",
    ],
)
def test_rollout_is_available_only_when_this_template_is_fully_rolled_out(
    live: dict[str, Any] | None, phase: str, message_part: str
) -> None:
    result = statuses.rollout(live, "h1")
    assert result.phase == phase
    assert message_part in result.message


def conditions(status: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {c["type"]: (c["status"], c["reason"]) for c in status["conditions"]}


def test_ready_agent_has_ready_true_endpoint_and_replica_counts() -> None:
    seen = statuses.Observation(
        generation=3,
        references_resolved=True,
        rollout=statuses.rollout(deployment(**FULL), "h1"),
        endpoint="http://support.shop.svc:8080/v1",
        config_hash="h1",
    )
    status = statuses.agent_status(seen, None, NOW)
    assert conditions(status) == {
        "Ready": ("True", "Available"),
        "ReferencesResolved": ("True", "Resolved"),
    }
    assert status["observedGeneration"] == 3
    assert status["endpoint"] == "http://support.shop.svc:8080/v1"
    assert (status["replicas"], status["availableReplicas"]) == (2, 2)
    assert all(c["observedGeneration"] == 3 for c in status["conditions"])


@pytest.mark.parametrize(
    ("failure", "resolved", "expected"),
    [
        (
            errors.MissingReference([errors.Reference("Persona", "tone")]),
            False,
            {
                "Ready": ("False", "MissingReference"),
                "ReferencesResolved": ("False", "MissingReference"),
                "Reconciling": ("True", "MissingReference"),
            },
        ),
        (
            errors.InvalidSpec("bad combination"),
            None,
            {"Ready": ("False", "InvalidSpec"), "Stalled": ("True", "InvalidSpec")},
        ),
        (
            errors.NameConflict("taken"),
            True,
            {
                "Ready": ("False", "NameConflict"),
                "Stalled": ("True", "NameConflict"),
                "ReferencesResolved": ("True", "Resolved"),
            },
        ),
    ],
    ids=["missing-reference", "invalid-spec", "name-conflict"],
)
def test_failures_set_ready_false_with_their_reason_and_reconciling_or_stalled(
    failure: errors.OperatorError, resolved: bool | None, expected: dict[str, tuple[str, str]]
) -> None:
    status = statuses.agent_status(
        statuses.Observation(generation=1, failure=failure, references_resolved=resolved), None, NOW
    )
    assert conditions(status) == expected


def test_missing_reference_message_names_what_is_missing() -> None:
    failure = errors.MissingReference(
        [errors.Reference("Persona", "tone"), errors.Reference("Secret", "openai", "api-key")]
    )
    status = statuses.agent_status(statuses.Observation(1, failure, False), None, NOW)
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert ready["message"] == "not found: Persona 'tone', Secret 'openai' (key 'api-key')"


def test_rolling_out_is_ready_false_and_reconciling_true() -> None:
    roll = statuses.rollout(deployment(**(FULL | {"updatedReplicas": 1})), "h1")
    status = statuses.agent_status(statuses.Observation(3, None, True, roll), None, NOW)
    assert conditions(status)["Ready"] == ("False", "RollingOut")
    assert conditions(status)["Reconciling"] == ("True", "RollingOut")


def test_last_transition_time_changes_only_when_the_condition_status_changes() -> None:
    rolling = statuses.rollout(deployment(**(FULL | {"availableReplicas": 0})), "h1")
    first = statuses.agent_status(statuses.Observation(3, None, True, rolling), None, NOW)
    rolling_more = statuses.rollout(deployment(**(FULL | {"availableReplicas": 1})), "h1")
    second = statuses.agent_status(statuses.Observation(3, None, True, rolling_more), first, LATER)
    ready = {c["type"]: c for c in second["conditions"]}["Ready"]
    assert ready["lastTransitionTime"] == NOW
    done = statuses.rollout(deployment(**FULL), "h1")
    third = statuses.agent_status(statuses.Observation(3, None, True, done), second, LATER)
    assert {c["type"]: c for c in third["conditions"]}["Ready"]["lastTransitionTime"] == LATER


def test_the_same_observation_gives_an_identical_status_so_nothing_is_written() -> None:
    seen = statuses.Observation(
        3, None, True, statuses.rollout(deployment(**FULL), "h1"), "e", "h1"
    )
    first = statuses.agent_status(seen, None, NOW)
    assert statuses.agent_status(seen, first, LATER) == first


def test_first_visit_sets_ready_unknown_once() -> None:
    initial = statuses.initial_agent_status(1, None, NOW)
    assert initial is not None
    assert conditions(initial)["Ready"] == ("Unknown", "Reconciling")
    assert statuses.initial_agent_status(1, initial, LATER) is None


def test_a_failure_keeps_the_endpoint_and_counts_seen_before() -> None:
    before = {"endpoint": "http://e/v1", "configHash": "h1", "replicas": 2, "availableReplicas": 2}
    failure = errors.MissingReference([errors.Reference("Secret", "s", "k")])
    status = statuses.agent_status(statuses.Observation(4, failure, False), before, NOW)
    assert (status["endpoint"], status["configHash"], status["replicas"]) == (
        "http://e/v1",
        "h1",
        2,
    )


def test_merge_patch_removes_keys_the_new_status_no_longer_has() -> None:
    assert statuses.merge_patch({"a": 1, "kopf": {}}, {"a": 2}) == {"kopf": None, "a": 2}


@pytest.mark.parametrize(
    ("before", "after", "event"),
    [
        (None, ("Unknown", "Reconciling"), None),
        (("Unknown", "Reconciling"), ("False", "RollingOut"), ("Normal", "RollingOut")),
        (("False", "RollingOut"), ("True", "Available"), None),  # the rollout ends as announced
        (("False", "MissingReference"), ("True", "Available"), ("Normal", "Available")),
        (("True", "Available"), ("False", "MissingReference"), ("Warning", "MissingReference")),
        (("False", "MissingReference"), ("False", "MissingReference"), None),
    ],
)
def test_events_are_posted_on_ready_transitions_only(
    before: tuple[str, str] | None, after: tuple[str, str], event: tuple[str, str] | None
) -> None:
    def status(ready: tuple[str, str] | None) -> dict[str, Any] | None:
        if ready is None:
            return None
        return {
            "conditions": [
                {"type": "Ready", "status": ready[0], "reason": ready[1], "message": "m"}
            ]
        }

    current = status(after)
    assert current is not None
    result = statuses.transition_event(status(before), current)
    assert (result[:2] if result else None) == event


def test_referenced_status_lists_users_sorted_and_is_ready_unless_there_is_a_problem() -> None:
    ok = statuses.referenced_status(2, ["b", "a", "b"], None, None, NOW)
    assert ok["usedBy"] == ["a", "b"]
    assert conditions(ok) == {"Ready": ("True", "Valid")}
    bad = statuses.referenced_status(2, [], ("MissingReference", "Agent 'x' not found"), ok, NOW)
    assert conditions(bad) == {"Ready": ("False", "MissingReference")}
    assert "usedBy" not in bad


def test_referenced_status_with_an_invalid_spec_is_stalled() -> None:
    invalid = statuses.referenced_status(2, [], ("InvalidSpec", "bad schema"), None, NOW)
    assert conditions(invalid) == {
        "Ready": ("False", "InvalidSpec"),
        "Stalled": ("True", "InvalidSpec"),
    }


def test_a_rollout_getting_further_is_not_worth_a_status_write_but_every_transition_is() -> None:
    def status(ready: tuple[str, str], generation: int = 3, message: str = "m") -> dict[str, Any]:
        conditions = [
            {"type": "Ready", "status": ready[0], "reason": ready[1], "message": message},
        ]
        return {"observedGeneration": generation, "conditions": conditions, "readyReplicas": 0}

    rolling = status(("False", "RollingOut"), message="0 of 2 pods updated")
    further = status(("False", "RollingOut"), message="1 of 2 pods updated") | {"readyReplicas": 1}
    assert statuses.only_progress(rolling, further)
    assert not statuses.only_progress(rolling, status(("True", "Available")))
    assert not statuses.only_progress(rolling, status(("False", "RollingOut"), generation=4))
    assert not statuses.only_progress(None, rolling), "the first status is always written"
    available = status(("True", "Available"), message="2 of 2")
    assert not statuses.only_progress(available, status(("True", "Available"), message="3 of 3"))
