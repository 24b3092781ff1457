"""One run of an Agent (`reconciling.Reconciler.agent`) against an in-memory API and the watch
cache over it: status, Events, idleness without reads, writes the cache has not shown yet,
healing, autoscaling. Outcomes are recorded by the real `Scheduler.record`."""

from __future__ import annotations

import asyncio
import base64
import io
from pathlib import Path
from typing import Any

import prometheus_client as prom
import pytest
import yaml
from operator_testkit import FakeKube, agent, cache, make_settings, persona

from corral.operator import applying, errors, kube, metrics, offline
from corral.operator.reconciling import Outcome, Reconciler
from corral.operator.rendering import children
from corral.operator.scheduling import Scheduler

KEY = ("Agent", "shop", "support")
AGENT_URL = kube.path("corral.dev/v1alpha1", "Agent", "shop", "support")
DEPLOYMENT_URL = kube.path("apps/v1", "Deployment", "shop", "support")
HPA_URL = kube.path("autoscaling/v2", "HorizontalPodAutoscaler", "shop", "support")


def secret(name: str, **data: str) -> dict[str, Any]:
    encoded = {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}
    meta = {"name": name, "namespace": "shop"}
    return {"apiVersion": "v1", "kind": "Secret", "metadata": meta, "data": encoded}


KEYED = {
    "provider": "openai",
    "name": "m",
    "apiKeySecretRef": {"name": "openai", "key": "api-key"},
}


class Operator:
    """A reconciler and the scheduler's bookkeeping over a FakeKube; `run` reconciles once."""

    def __init__(self, api: FakeKube, **settings: Any) -> None:
        self.api = api
        self.now = 0.0
        self.reconciler = Reconciler(
            client=api,  # type: ignore[arg-type]
            settings=make_settings(**settings),
            metrics=metrics.build(prom.CollectorRegistry()),
            indexes=cache(api),
            clock=lambda: "2026-01-01T00:00:00Z",
            monotonic=lambda: self.now,
        )
        self.scheduler = Scheduler(
            settings=self.reconciler.settings,
            reconciler=self.reconciler,
            indexes=self.reconciler.indexes,
            clock=lambda: self.now,
        )
        self.scheduler.agent_seen(None, api.at(AGENT_URL))

    def run(self, refresh: bool = True) -> Outcome:
        """One reconcile; `refresh=False`: the watch cache has not caught up meanwhile."""
        if refresh:
            self.reconciler.indexes = cache(self.api)
        record = self.scheduler.records[KEY]
        outcome = asyncio.run(self.reconciler.agent(KEY, record))
        self.scheduler.record(KEY, outcome)
        return outcome


def ready(api: FakeKube) -> tuple[str, str]:
    conditions = api.at(AGENT_URL)["status"]["conditions"]
    condition = next(c for c in conditions if c["type"] == "Ready")
    return condition["status"], condition["reason"]


def make_available(api: FakeKube) -> None:
    deployment = api.touch(DEPLOYMENT_URL)
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
    api.put(agent(personaRef={"name": "tone"}, model=KEYED))
    return api


def test_an_agent_becomes_ready_once_its_deployment_is_available(api: FakeKube) -> None:
    op = Operator(api)
    op.run()
    assert ready(api) == ("False", "RollingOut")
    make_available(api)
    op.run()
    assert ready(api) == ("True", "Available")
    assert api.events == [], "a new Agent's first rollout is told by its status, not by Events"
    status = api.at(AGENT_URL)["status"]
    assert (status["currentReplicas"], status["desiredReplicas"]) == (1, 1)


def status_writes(api: FakeKube) -> int:
    return sum(1 for verb, kind, _ in api.writes if (verb, kind) == ("patch-status", "Agent"))


def test_a_first_rollout_done_within_the_delay_costs_one_status_write(api: FakeKube) -> None:
    op = Operator(api, first_status_delay_seconds=3)
    outcome = op.run()
    assert status_writes(api) == 0, "the first status waits for the rollout"
    assert "conditions" not in api.at(AGENT_URL).get("status", {})
    assert outcome.recheck_after == 3
    assert op.scheduler.record(KEY, outcome)[0] == 3, "due again when the delay is over"
    op.now = 1.0
    assert op.run().recheck_after == 2, "held since the first run, not since the last"
    make_available(api)
    op.now = 2.0
    outcome = op.run()
    assert ready(api) == ("True", "Available")
    assert status_writes(api) == 1
    assert (outcome.held_since, op.scheduler.records[KEY].held_since) == (None, None)
    assert api.events == []


def test_a_first_rollout_still_running_after_the_delay_is_told_as_rolling_out(
    api: FakeKube,
) -> None:
    op = Operator(api, first_status_delay_seconds=3)
    op.run()
    op.now = 3.0
    assert op.run().recheck_after is None
    assert ready(api) == ("False", "RollingOut")
    make_available(api)
    op.run()
    assert ready(api) == ("True", "Available")
    assert status_writes(api) == 2


def test_a_new_agents_failure_is_written_at_once_whatever_the_delay() -> None:
    api = FakeKube()
    api.put(agent(personaRef={"name": "tone"}))
    op = Operator(api, first_status_delay_seconds=30)
    op.run()
    assert ready(api) == ("False", "MissingReference")


def test_an_idle_reconcile_reads_nothing_and_writes_nothing(api: FakeKube) -> None:
    op = Operator(api)
    op.run()
    make_available(api)
    op.run()
    api.writes.clear()
    events = len(api.events)
    op.run()
    assert (api.writes, api.reads, len(api.events)) == ([], [], events)


def test_a_run_before_the_cache_shows_the_last_runs_writes_writes_nothing_again(
    api: FakeKube,
) -> None:
    op = Operator(api)
    op.run()
    api.writes.clear()
    op.run(refresh=False)
    assert api.writes == []


def test_rendering_is_skipped_while_nothing_it_depends_on_changed(
    api: FakeKube, monkeypatch: pytest.MonkeyPatch
) -> None:
    renders = []
    original = children.render
    monkeypatch.setattr(children, "render", lambda *a, **k: renders.append(1) or original(*a, **k))
    op = Operator(api)
    op.run()
    make_available(api)
    op.run()
    assert len(renders) == 1
    api.put(persona("tone", systemPrompt="Be brief."))["metadata"]["generation"] = 2
    op.run()
    assert len(renders) == 2


def test_a_missing_persona_is_reported_retried_and_heals_once_created() -> None:
    api = FakeKube()
    api.put(agent(personaRef={"name": "tone"}))
    op = Operator(api)
    outcome = op.run()
    assert ready(api) == ("False", "MissingReference")
    assert "Persona 'tone'" in str(outcome.error)
    assert op.scheduler.records[KEY].failures == 1
    assert (
        kube.path_of(
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": "support", "namespace": "shop"},
            }
        )
        not in api.objects
    )
    api.writes.clear()
    op.run()
    assert api.writes == [], "retrying writes nothing while nothing changed"
    api.put(persona("tone"))
    assert op.run().error is None
    assert DEPLOYMENT_URL in api.objects
    assert op.scheduler.records[KEY].failures == 0


def test_rotating_a_referenced_secret_rolls_the_pods(api: FakeKube) -> None:
    op = Operator(api)
    op.run()
    before = api.at(DEPLOYMENT_URL)["spec"]["template"]["metadata"]["annotations"]
    api.put(secret("openai", **{"api-key": "sk-2"}))
    op.run()
    after = api.at(DEPLOYMENT_URL)["spec"]["template"]["metadata"]["annotations"]
    assert before["corral.dev/config-hash"] != after["corral.dev/config-hash"]
    assert "sk-2" not in str(api.objects).replace(base64.b64encode(b"sk-2").decode(), "")


def test_a_child_deleted_by_hand_is_created_again_with_an_event(api: FakeKube) -> None:
    op = Operator(api)
    op.run()
    make_available(api)
    op.run()
    op.scheduler.child_seen("Deployment", "MODIFIED", api.at(DEPLOYMENT_URL))  # the echo
    del api.objects[DEPLOYMENT_URL]
    op.run()
    assert DEPLOYMENT_URL in api.objects
    assert [e["reason"] for e in api.events] == ["Created"]


def test_a_first_visit_that_fails_posts_a_warning(api: FakeKube) -> None:
    api.put(agent(personaRef={"name": "missing"}, model=KEYED))
    Operator(api).run()
    assert [(e["type"], e["reason"]) for e in api.events] == [("Warning", "MissingReference")]


def test_an_invalid_spec_is_stalled_and_not_retried_on_a_timer() -> None:
    api = FakeKube()
    api.put(agent(instructions="x" * 40000))
    op = Operator(api)
    outcome = op.run()
    assert outcome.error is not None
    assert outcome.error.permanent
    conditions = {c["type"]: c["status"] for c in api.at(AGENT_URL)["status"]["conditions"]}
    assert conditions["Stalled"] == "True"


def test_a_hand_edit_of_the_deployment_is_reverted(api: FakeKube) -> None:
    op = Operator(api)
    op.run()
    api.touch(DEPLOYMENT_URL)["spec"]["template"]["spec"]["containers"][0]["image"] = "evil:1"
    op.run()
    container = api.at(DEPLOYMENT_URL)["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "registry.test/corral:1.2.3"
    assert api.events[-1]["reason"] == "DriftReverted"


def test_a_first_visit_failing_on_the_api_still_shows_a_status(api: FakeKube) -> None:
    api.fail_next.append(errors.ApiUnavailable("PATCH: 503"))
    outcome = Operator(api).run()
    assert isinstance(outcome.error, errors.ApiUnavailable)
    assert ready(api) == ("Unknown", "Reconciling")


def test_a_deleted_agent_is_gone_without_writes(api: FakeKube) -> None:
    op = Operator(api)
    del api.objects[AGENT_URL]
    assert op.run().gone
    assert api.writes == []
    assert KEY not in op.scheduler.records


def test_autoscaling_renders_an_hpa_and_the_deployment_without_replicas() -> None:
    api = FakeKube()
    api.put(agent(autoscaling={"minReplicas": 2, "maxReplicas": 5}))
    Operator(api).run()
    hpa = api.at(HPA_URL)
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "support",
    }
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 5)
    assert hpa["metadata"]["ownerReferences"][0]["kind"] == "Agent"
    assert "replicas" not in api.at(DEPLOYMENT_URL)["spec"]
    assert kube.path("policy/v1", "PodDisruptionBudget", "shop", "support") in api.objects


def test_switching_from_replicas_to_autoscaling_keeps_the_pods_and_reports_the_hpa() -> None:
    api = FakeKube()
    api.put(agent(replicas=3))
    op = Operator(api)
    op.run()
    assert api.at(DEPLOYMENT_URL)["spec"]["replicas"] == 3
    api.put(agent(generation=2, autoscaling={"minReplicas": 2, "maxReplicas": 5}))
    api.writes.clear()
    op.run()
    assert ("apply", "Deployment", DEPLOYMENT_URL) in api.writes
    assert api.writes[0][1] == "Deployment", "the handover comes first"
    assert api.at(DEPLOYMENT_URL)["spec"]["replicas"] == 3, "never reset to 1"
    api.touch(HPA_URL)["status"] = {"currentReplicas": 3, "desiredReplicas": 4}
    make_available(api)
    op.run()
    status = api.at(AGENT_URL)["status"]
    assert (status["currentReplicas"], status["desiredReplicas"]) == (3, 4)
    api.writes.clear()
    api.touch(DEPLOYMENT_URL)["spec"]["replicas"] = 4  # the HPA scaled
    op.run()
    assert ("apply", "Deployment", DEPLOYMENT_URL) not in api.writes
    assert api.at(DEPLOYMENT_URL)["spec"]["replicas"] == 4


def test_offline_render_prints_exactly_what_the_operator_applies(
    api: FakeKube, tmp_path: Path
) -> None:
    applied: list[dict[str, Any]] = []
    original = api.apply

    async def recording_apply(manifest: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        applied.append(manifest)
        return await original(manifest, **kwargs)

    api.apply = recording_apply  # type: ignore[method-assign]
    Operator(api).run()
    inputs = [
        api.at(AGENT_URL),
        api.at(kube.path("corral.dev/v1alpha1", "Persona", "shop", "tone")),
        api.at(kube.path("v1", "Secret", "shop", "openai")),
    ]
    for obj in inputs:
        obj["metadata"].pop("managedFields", None)
    manifests = tmp_path / "in.yaml"
    manifests.write_text(yaml.safe_dump_all(inputs))
    out, err = io.StringIO(), io.StringIO()
    assert offline.run([manifests], make_settings().image, out, err) == 0, err.getvalue()
    assert list(yaml.safe_load_all(out.getvalue())) == applied


def test_the_handover_manager_is_not_the_operators() -> None:
    assert applying.HANDOVER_MANAGER != "corral"
