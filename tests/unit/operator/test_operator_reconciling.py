"""The reconcile of one Agent against an in-memory API: status, events, idleness, healing."""

from __future__ import annotations

import asyncio
import base64
import copy
import io
from pathlib import Path
from typing import Any

import prometheus_client as prom
import pytest
import yaml
from operator_testkit import FakeKube, agent, make_settings, persona

from corral.operator import errors, kube, metrics, offline
from corral.operator.reconciling import ChildEvent, Reconciler

AGENT_URL = kube.path("corral.dev/v1alpha1", "Agent", "shop", "support")
DEPLOYMENT_URL = kube.path("apps/v1", "Deployment", "shop", "support")
EVENTS_URL = kube.path("v1", "Event", "shop")


def make_reconciler(api: FakeKube) -> Reconciler:
    return Reconciler(
        client=api,  # type: ignore[arg-type]
        settings=make_settings(retry_base_seconds=0.01, retry_max_seconds=0.02),
        metrics=metrics.build(prom.CollectorRegistry()),
        clock=lambda: "2026-01-01T00:00:00Z",
    )


def secret(name: str, **data: str) -> dict[str, Any]:
    encoded = {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": "shop"},
        "data": encoded,
    }


def ready(api: FakeKube) -> tuple[str, str]:
    conditions = api.at(AGENT_URL)["status"]["conditions"]
    condition = next(c for c in conditions if c["type"] == "Ready")
    return condition["status"], condition["reason"]


def make_available(api: FakeKube) -> None:
    deployment = api.at(DEPLOYMENT_URL)
    replicas = deployment["spec"].get("replicas", 1)
    deployment["status"] = {
        "observedGeneration": deployment["metadata"]["generation"],
        "replicas": replicas,
        "updatedReplicas": replicas,
        "readyReplicas": replicas,
        "availableReplicas": replicas,
    }


@pytest.fixture
def api() -> FakeKube:
    api = FakeKube()
    api.put(persona("tone"))
    api.put(secret("openai", **{"api-key": "sk-1"}))
    api.put(
        agent(
            personaRef={"name": "tone"},
            model={
                "provider": "openai",
                "name": "m",
                "apiKeySecretRef": {"name": "openai", "key": "api-key"},
            },
        )
    )
    return api


@pytest.mark.anyio
async def test_an_agent_becomes_ready_once_its_deployment_is_available(api: FakeKube) -> None:
    reconciler = make_reconciler(api)
    await reconciler.reconcile("shop", "support")
    assert ready(api) == ("False", "RollingOut")
    assert api.at(AGENT_URL)["status"]["endpoint"] == "http://support.shop.svc:8080/v1"
    make_available(api)
    await reconciler.reconcile("shop", "support")
    assert ready(api) == ("True", "Available")
    assert [e["reason"] for e in api.events] == ["Created", "Available"]


@pytest.mark.anyio
async def test_an_idle_reconcile_writes_nothing(api: FakeKube) -> None:
    reconciler = make_reconciler(api)
    await reconciler.reconcile("shop", "support")
    make_available(api)
    await reconciler.reconcile("shop", "support")
    api.writes.clear()
    await reconciler.reconcile("shop", "support")
    await reconciler.trigger("shop", "support", "test")
    assert api.writes == []


@pytest.mark.anyio
async def test_a_first_visit_writes_the_status_once(api: FakeKube) -> None:
    await make_reconciler(api).reconcile("shop", "support")
    assert api.writes.count(("patch-status", "Agent", AGENT_URL)) == 1
    assert ready(api) == ("False", "RollingOut")


@pytest.mark.anyio
async def test_a_first_visit_failing_on_the_api_still_shows_a_status(api: FakeKube) -> None:
    api.fail_next.append(errors.ApiUnavailable("PATCH configmaps: 503"))
    with pytest.raises(errors.ApiUnavailable):
        await make_reconciler(api).reconcile("shop", "support")
    assert ready(api) == ("Unknown", "Reconciling")


@pytest.mark.anyio
async def test_a_missing_persona_is_reported_retried_and_heals_once_created(api: FakeKube) -> None:
    del api.objects[kube.path("corral.dev/v1alpha1", "Persona", "shop", "tone")]
    reconciler = make_reconciler(api)
    with pytest.raises(errors.MissingReference):
        await reconciler.reconcile("shop", "support")
    assert ready(api) == ("False", "MissingReference")
    assert DEPLOYMENT_URL not in api.objects
    assert api.events[-1]["reason"] == "MissingReference"
    assert api.events[-1]["type"] == "Warning"
    api.put(persona("tone"))
    await reconciler.reconcile("shop", "support")
    assert ready(api) == ("False", "RollingOut")
    assert DEPLOYMENT_URL in api.objects


@pytest.mark.anyio
async def test_retrying_a_missing_reference_rewrites_nothing(api: FakeKube) -> None:
    del api.objects[kube.path("v1", "Secret", "shop", "openai")]
    reconciler = make_reconciler(api)
    with pytest.raises(errors.MissingReference):
        await reconciler.reconcile("shop", "support")
    api.writes.clear()
    with pytest.raises(errors.MissingReference):
        await reconciler.reconcile("shop", "support")
    assert api.writes == []


@pytest.mark.anyio
async def test_rotating_a_referenced_secret_rolls_the_pods(api: FakeKube) -> None:
    reconciler = make_reconciler(api)
    await reconciler.reconcile("shop", "support")
    before = api.at(DEPLOYMENT_URL)["spec"]["template"]["metadata"]["annotations"]
    api.put(secret("openai", **{"api-key": "sk-2"}))
    await reconciler.reconcile("shop", "support")
    after = api.at(DEPLOYMENT_URL)["spec"]["template"]["metadata"]["annotations"]
    assert before["corral.dev/config-hash"] != after["corral.dev/config-hash"]
    assert api.events[-1]["reason"] == "RollingOut"


@pytest.mark.anyio
async def test_an_invalid_spec_is_stalled_and_raised_as_such(api: FakeKube) -> None:
    api.put(agent(tools=[{"name": "self"}]))
    api.put(
        {
            "apiVersion": "corral.dev/v1alpha1",
            "kind": "Tool",
            "metadata": {"name": "self", "namespace": "shop"},
            "spec": {"description": "me", "agent": {"name": "support"}},
        }
    )
    with pytest.raises(errors.InvalidSpec):
        await make_reconciler(api).reconcile("shop", "support")
    conditions = {c["type"]: c["status"] for c in api.at(AGENT_URL)["status"]["conditions"]}
    assert conditions["Stalled"] == "True"


@pytest.mark.anyio
async def test_outcomes_and_managed_objects_are_counted_in_metrics(api: FakeKube) -> None:
    reconciler = make_reconciler(api)
    await reconciler.reconcile("shop", "support")
    del api.objects[kube.path("v1", "Secret", "shop", "openai")]
    with pytest.raises(errors.MissingReference):
        await reconciler.reconcile("shop", "support")
    registry = reconciler.metrics.registry
    assert (
        registry.get_sample_value(
            "corral_operator_reconciles_total", {"kind": "Agent", "outcome": "success"}
        )
        == 1
    )
    assert (
        registry.get_sample_value(
            "corral_operator_errors_total", {"kind": "Agent", "reason": "MissingReference"}
        )
        == 1
    )
    assert registry.get_sample_value("corral_operator_managed_objects", {"kind": "Deployment"}) == 1
    reconciler.forget("shop", "support")
    assert registry.get_sample_value("corral_operator_managed_objects", {"kind": "Deployment"}) == 0


def test_offline_render_prints_exactly_what_the_operator_applies(
    api: FakeKube, tmp_path: Path
) -> None:
    applied: list[dict[str, Any]] = []
    original = api.apply

    async def recording_apply(manifest: dict[str, Any]) -> dict[str, Any]:
        applied.append(manifest)
        return await original(manifest)

    api.apply = recording_apply  # type: ignore[method-assign]
    asyncio.run(make_reconciler(api).reconcile("shop", "support"))
    inputs = [
        api.at(AGENT_URL),
        api.at(kube.path("corral.dev/v1alpha1", "Persona", "shop", "tone")),
        api.at(kube.path("v1", "Secret", "shop", "openai")),
    ]
    manifests = tmp_path / "in.yaml"
    manifests.write_text(yaml.safe_dump_all(inputs))
    out, err = io.StringIO(), io.StringIO()
    assert offline.run([manifests], make_settings().image, out, err) == 0, err.getvalue()
    assert list(yaml.safe_load_all(out.getvalue())) == applied


def agent_reconciles(reconciler: Reconciler) -> float:
    total = 0.0
    for outcome in ("success", "MissingReference", "ApiConflict"):
        value = reconciler.metrics.registry.get_sample_value(
            "corral_operator_reconciles_total", {"kind": "Agent", "outcome": outcome}
        )
        total += value or 0
    return total


@pytest.mark.anyio
async def test_a_burst_of_triggers_coalesces_into_one_running_and_one_pending_reconcile(
    api: FakeKube,
) -> None:
    reconciler = make_reconciler(api)
    await asyncio.gather(*(reconciler.trigger("shop", "support", f"change {i}") for i in range(5)))
    assert agent_reconciles(reconciler) == 2


@pytest.mark.anyio
async def test_a_triggered_reconcile_retries_api_conflicts(api: FakeKube) -> None:
    api.fail_next = [errors.ApiConflict("409"), errors.ApiConflict("409")]
    reconciler = make_reconciler(api)
    await reconciler.trigger("shop", "support", "test")
    assert DEPLOYMENT_URL in api.objects
    assert agent_reconciles(reconciler) == 3


@pytest.mark.anyio
async def test_a_triggered_reconcile_never_raises(api: FakeKube) -> None:
    del api.objects[kube.path("corral.dev/v1alpha1", "Persona", "shop", "tone")]
    await make_reconciler(api).trigger("shop", "support", "test")
    assert ready(api) == ("False", "MissingReference")


@pytest.mark.anyio
async def test_a_deleted_agent_is_forgotten_without_writes(api: FakeKube) -> None:
    reconciler = make_reconciler(api)
    del api.objects[AGENT_URL]
    await reconciler.reconcile("shop", "support")
    assert api.writes == []


PDB_URL = kube.path("policy/v1", "PodDisruptionBudget", "shop", "support")


@pytest.mark.anyio
async def test_a_single_replica_agent_looks_for_a_budget_to_delete_only_once(api: FakeKube) -> None:
    reconciler = make_reconciler(api)
    await reconciler.reconcile("shop", "support")
    await reconciler.reconcile("shop", "support")
    assert api.reads.count(PDB_URL) == 1


@pytest.mark.anyio
async def test_scaling_down_to_one_replica_deletes_the_budget_it_had(api: FakeKube) -> None:
    reconciler = make_reconciler(api)
    body = api.at(AGENT_URL)
    body["spec"]["replicas"] = 2
    await reconciler.reconcile("shop", "support")
    assert PDB_URL in api.objects
    body["spec"]["replicas"] = 1
    body["metadata"]["generation"] += 1
    await reconciler.reconcile("shop", "support")
    assert PDB_URL not in api.objects


@pytest.mark.anyio
async def test_a_scheduled_reconcile_runs_in_the_background(api: FakeKube) -> None:
    reconciler = make_reconciler(api)
    reconciler.schedule("shop", "support", "test")
    assert DEPLOYMENT_URL not in api.objects
    await reconciler.join()
    assert DEPLOYMENT_URL in api.objects


def rollout_event(api: FakeKube) -> ChildEvent:
    """The Deployment's next watch event, as written by someone else (the Deployment
    controller, or a hand edit): a new resourceVersion and a copy of the body."""
    body = copy.deepcopy(api.touch(DEPLOYMENT_URL))
    return ChildEvent("Deployment", "support", body["metadata"]["resourceVersion"], body)


@pytest.mark.anyio
async def test_a_rollout_event_updates_the_status_without_reading_anything(api: FakeKube) -> None:
    reconciler = make_reconciler(api)
    await reconciler.reconcile("shop", "support")
    make_available(api)
    api.reads.clear()
    api.writes.clear()
    reconciler.child_changed("shop", "support", rollout_event(api))
    await reconciler.join()
    assert ready(api) == ("True", "Available")
    assert api.at(AGENT_URL)["status"]["availableReplicas"] == 1
    assert api.reads == []
    assert api.writes == [("patch-status", "Agent", AGENT_URL), ("create", "Event", EVENTS_URL)]
    assert api.events[-1]["reason"] == "Available"
    reconciler.child_changed("shop", "support", rollout_event(api))
    await reconciler.join()
    assert api.writes[2:] == []


@pytest.mark.anyio
async def test_a_hand_edit_seen_in_a_deployment_event_is_reverted(api: FakeKube) -> None:
    reconciler = make_reconciler(api)
    await reconciler.reconcile("shop", "support")
    edited = api.at(DEPLOYMENT_URL)
    edited["metadata"]["labels"] = {"team": "edited-by-hand"}
    api.writes.clear()
    reconciler.child_changed("shop", "support", rollout_event(api))
    await reconciler.join()
    assert ("apply", "Deployment", DEPLOYMENT_URL) in api.writes
    assert "app.kubernetes.io/managed-by" in api.at(DEPLOYMENT_URL)["metadata"]["labels"]


@pytest.mark.anyio
async def test_a_rollout_event_needs_a_full_reconcile_when_nothing_is_known(api: FakeKube) -> None:
    del api.objects[kube.path("corral.dev/v1alpha1", "Persona", "shop", "tone")]
    reconciler = make_reconciler(api)
    with pytest.raises(errors.MissingReference):
        await reconciler.reconcile("shop", "support")
    api.put(persona("tone"))
    api.reads.clear()
    reconciler.child_changed("shop", "support", ChildEvent("Deployment", "support", "9", {}))
    await reconciler.join()
    assert AGENT_URL in api.reads
    assert ready(api) == ("False", "RollingOut")
    # A reconciler that never reconciled the Agent (a restarted operator) does the same.
    fresh = make_reconciler(api)
    api.reads.clear()
    fresh.child_changed("shop", "support", rollout_event(api))
    await fresh.join()
    assert AGENT_URL in api.reads


@pytest.mark.anyio
async def test_a_full_reconcile_asked_for_while_a_rollout_update_waits_is_kept(
    api: FakeKube,
) -> None:
    reconciler = make_reconciler(api)
    await reconciler.reconcile("shop", "support")
    api.reads.clear()
    reconciler.child_changed("shop", "support", rollout_event(api))
    reconciler.schedule("shop", "support", "its Persona changed")
    await reconciler.join()
    assert AGENT_URL in api.reads


@pytest.mark.anyio
async def test_a_rollout_event_of_a_deleted_agent_forgets_it(api: FakeKube) -> None:
    reconciler = make_reconciler(api)
    await reconciler.reconcile("shop", "support")
    make_available(api)
    event = rollout_event(api)
    del api.objects[AGENT_URL]
    reconciler.child_changed("shop", "support", event)
    await reconciler.join()
    assert api.writes[-1] == ("patch-status", "Agent", AGENT_URL)
    assert api.reads[-1] == AGENT_URL  # the full reconcile found it gone
    api.writes.clear()
    reconciler.child_changed("shop", "support", event)
    await reconciler.join()
    assert api.writes == []


@pytest.mark.anyio
async def test_the_echo_of_a_write_seen_before_the_reconcile_ends_causes_nothing(
    api: FakeKube,
) -> None:
    reconciler = make_reconciler(api)

    def watch_event(applied: dict[str, Any]) -> None:
        # The watch delivers the ConfigMap's creation before the reconcile has written the
        # Service and the Deployment, so before it recorded what it wrote.
        if applied["kind"] == "ConfigMap":
            meta = applied["metadata"]
            event = ChildEvent("ConfigMap", meta["name"], meta["resourceVersion"])
            reconciler.child_changed("shop", "support", event)

    api.on_apply = watch_event
    await reconciler.reconcile("shop", "support")
    await reconciler.join()
    assert api.reads.count(AGENT_URL) == 1
