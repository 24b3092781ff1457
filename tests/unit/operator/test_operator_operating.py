"""Which events cause work (`operating.Operator`): status-only events never do, real changes
reconcile exactly the Agents that depend on them, and Persona/Tool status comes from the live
object. Kopf is simulated: indexes are rebuilt from the in-memory API before each event, as
Kopf updates them before it calls a handler."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import copy
from typing import Any

import prometheus_client as prom
import pytest
from operator_testkit import NAMESPACE, FakeKube, agent, agent_tool, http_tool, make_settings
from operator_testkit import persona as make_persona

from corral.operator import errors, hashing, indexing, kube, main, metrics, operating
from corral.operator.reconciling import Reconciler

API = "corral.dev/v1alpha1"


def url(kind: str, name: str) -> str:
    api_version = {"ConfigMap": "v1", "Secret": "v1", "Deployment": "apps/v1"}.get(kind, API)
    return kube.path(api_version, kind, NAMESPACE, name)


def secret(name: str, **data: str) -> dict[str, Any]:
    encoded = {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}
    meta = {"name": name, "namespace": NAMESPACE}
    return {"apiVersion": "v1", "kind": "Secret", "metadata": meta, "data": encoded}


class Kopf:
    """The operator with Kopf's part played by hand: indexes, events, waiting for the work."""

    def __init__(self, *objects: dict[str, Any]) -> None:
        self.api = FakeKube()
        for obj in objects:
            self.api.put(obj)
        self._maps: dict[str, dict[Any, list[Any]]] = {name: {} for name in main.INDEXES}
        self.indexes = indexing.Indexes(**self._maps)
        meters = metrics.build(prom.CollectorRegistry())
        self.reconciler = Reconciler(
            client=self.api,  # type: ignore[arg-type]
            settings=make_settings(),
            metrics=meters,
            clock=lambda: "2026-01-01T00:00:00Z",
            reader=self.indexes,
        )
        self.operator = operating.Operator(
            settings=self.reconciler.settings,
            client=self.api,  # type: ignore[arg-type]
            reconciler=self.reconciler,
            indexes=self.indexes,
            metrics=meters,
        )

    def reindex(self) -> None:
        functions = {
            "Agent": [
                ("agents_by_reference", indexing.agent_references),
                ("agents_by_namespace", indexing.name_by_namespace),
            ],
            "Tool": [
                ("tools_by_reference", indexing.tool_references),
                ("tools", indexing.spec_by_name),
            ],
            "Persona": [("personas", indexing.spec_by_name)],
            "Secret": [("secrets", indexing.secret_digests)],
        }
        for index in self._maps.values():
            index.clear()
        for obj in self.api.objects.values():
            for index, function in functions.get(obj["kind"], []):
                for key, value in function(obj).items():
                    self._maps[index].setdefault(key, []).append(value)

    async def event(self, type_: str | None, body: dict[str, Any]) -> None:
        """Deliver one watch event (after indexing it) and wait for the work it caused."""
        self.reindex()
        kind = body["kind"]
        if kind == "Agent":
            self.operator.agent_changed(type_, body)
        elif kind in ("Persona", "Tool"):
            self.operator.referenced_changed(kind, type_, body)
        elif kind == "Secret":
            meta = body["metadata"]
            digest = hashing.secret_data_digest(NAMESPACE, meta["name"], body.get("data"))
            self.operator.secret_changed(type_, NAMESPACE, meta["name"], digest)
        else:
            meta = body["metadata"]
            owner = meta.get("labels", {}).get("corral.dev/agent")
            rv = meta.get("resourceVersion")
            self.operator.child_changed(type_, NAMESPACE, owner, kind, meta["name"], rv, body)
        await self.operator.join()

    async def start(self) -> None:
        """Startup: every object listed (type None), and every Agent resumed."""
        for obj in list(self.api.objects.values()):
            await self.event(None, copy.deepcopy(obj))
        for obj in list(self.api.objects.values()):
            if obj["kind"] == "Agent":
                with contextlib.suppress(errors.OperatorError):  # in status; Kopf retries
                    await self.reconciler.reconcile(NAMESPACE, obj["metadata"]["name"])
        self.api.writes.clear()

    def change(self, kind: str, name: str, **spec: Any) -> dict[str, Any]:
        """Edit a spec as a user would: the generation goes up."""
        body = copy.deepcopy(self.api.at(url(kind, name)))
        body["spec"] |= spec
        body["metadata"]["generation"] += 1
        return self.api.put(body)

    def reconciles(self, kind: str = "Agent") -> float:
        registry = self.operator.metrics.registry
        return sum(
            registry.get_sample_value(
                "corral_operator_reconciles_total", {"kind": kind, "outcome": outcome}
            )
            or 0
            for outcome in ("success", "MissingReference", "InvalidSpec")
        )

    def status(self, kind: str, name: str) -> dict[str, Any]:
        status: dict[str, Any] = self.api.at(url(kind, name)).get("status", {})
        return status

    def config_of(self, agent_name: str) -> str:
        data: str = self.api.at(url("ConfigMap", f"{agent_name}-runtime"))["data"]["runtime.json"]
        return data


def shared_fleet() -> list[dict[str, Any]]:
    """a and b use Persona tone and Tool lookup; bystander uses Persona other."""
    return [
        make_persona("tone"),
        make_persona("other"),
        http_tool("lookup"),
        agent("a", uid="uid-a", personaRef={"name": "tone"}, tools=[{"name": "lookup"}]),
        agent("b", uid="uid-b", personaRef={"name": "tone"}, tools=[{"name": "lookup"}]),
        agent("bystander", uid="uid-by", personaRef={"name": "other"}),
    ]


@pytest.mark.anyio
async def test_the_startup_listing_refreshes_statuses_and_leaves_reconciles_to_resume() -> None:
    kopf = Kopf(*shared_fleet())
    for obj in list(kopf.api.objects.values()):
        await kopf.event(None, copy.deepcopy(obj))
    assert kopf.reconciles() == 0
    assert kopf.status("Persona", "tone")["usedBy"] == ["a", "b"]
    assert kopf.status("Tool", "lookup")["usedBy"] == ["a", "b"]
    assert kopf.status("Persona", "other")["usedBy"] == ["bystander"]


@pytest.mark.anyio
async def test_status_only_events_of_shared_objects_and_agents_cause_no_work() -> None:
    kopf = Kopf(*shared_fleet())
    await kopf.start()
    reconciles, refreshes = kopf.reconciles(), kopf.reconciles("Persona")
    stale = copy.deepcopy(kopf.api.at(url("Persona", "tone")))
    stale.pop("status")  # an old event body, from before the operator's status write
    await kopf.event("MODIFIED", stale)
    await kopf.event("MODIFIED", copy.deepcopy(kopf.api.at(url("Tool", "lookup"))))
    for name in ("a", "b", "bystander"):
        await kopf.event("MODIFIED", copy.deepcopy(kopf.api.at(url("Agent", name))))
    assert kopf.api.writes == []
    assert (kopf.reconciles(), kopf.reconciles("Persona")) == (reconciles, refreshes)


@pytest.mark.anyio
async def test_a_persona_spec_change_reconciles_exactly_the_agents_using_it() -> None:
    kopf = Kopf(*shared_fleet())
    await kopf.start()
    before = {name: kopf.config_of(name) for name in ("a", "b", "bystander")}
    await kopf.event("MODIFIED", kopf.change("Persona", "tone", systemPrompt="Be brief."))
    after = {name: kopf.config_of(name) for name in ("a", "b", "bystander")}
    assert [name for name in before if before[name] != after[name]] == ["a", "b"]
    assert "Be brief." in after["a"]
    assert kopf.status("Persona", "tone")["observedGeneration"] == 2


@pytest.mark.anyio
async def test_persona_status_is_compared_with_the_live_object_not_an_older_event_body() -> None:
    kopf = Kopf(*shared_fleet())
    await kopf.start()
    await kopf.event("ADDED", kopf.api.put(agent("c", uid="uid-c", personaRef={"name": "tone"})))
    assert kopf.status("Persona", "tone")["usedBy"] == ["a", "b", "c"]
    status_writes = [w for w in kopf.api.writes if w[0] == "patch-status" and w[1] == "Persona"]
    assert status_writes == [("patch-status", "Persona", url("Persona", "tone"))]


@pytest.mark.anyio
async def test_a_burst_of_new_agents_shares_status_refreshes_of_their_persona() -> None:
    kopf = Kopf(*shared_fleet())
    await kopf.start()
    kopf.operator.settings = make_settings(status_refresh_interval_seconds=1.0)
    names = [f"new-{i}" for i in range(10)]
    for name in names:
        # Delivered one by one, each after the refresh the one before asked for had started.
        body = kopf.api.put(agent(name, uid=f"uid-{name}", personaRef={"name": "tone"}))
        kopf.reindex()
        kopf.operator.agent_changed("ADDED", body)
        for _ in range(5):
            await asyncio.sleep(0)
    await kopf.operator.join()
    assert kopf.status("Persona", "tone")["usedBy"] == sorted(["a", "b", *names])
    refreshed = ("patch-status", "Persona", url("Persona", "tone"))
    # The first change at once, the nine after it together.
    assert kopf.api.writes.count(refreshed) == 2


@pytest.mark.anyio
async def test_an_agent_that_stops_using_a_tool_leaves_its_used_by_and_nothing_else_moves() -> None:
    kopf = Kopf(*shared_fleet())
    await kopf.start()
    await kopf.event("MODIFIED", kopf.change("Agent", "b", tools=[]))
    assert kopf.status("Tool", "lookup")["usedBy"] == ["a"]
    assert kopf.status("Persona", "tone")["usedBy"] == ["a", "b"]
    assert {w[2] for w in kopf.api.writes if w[0] == "patch-status" and w[1] != "Agent"} == {
        url("Tool", "lookup")
    }
    await kopf.event("DELETED", kopf.api.objects.pop(url("Agent", "a")))
    assert "usedBy" not in kopf.status("Tool", "lookup")


@pytest.mark.anyio
async def test_an_agent_tool_heals_when_the_agent_it_calls_appears() -> None:
    support = agent("support", uid="uid-s", tools=[{"name": "ask-billing"}])
    kopf = Kopf(agent_tool("ask-billing", "billing"), support)
    await kopf.start()
    ready = next(
        c for c in kopf.status("Tool", "ask-billing")["conditions"] if c["type"] == "Ready"
    )
    assert (ready["status"], ready["reason"]) == ("False", "MissingReference")
    assert url("Deployment", "support") not in kopf.api.objects
    await kopf.event("ADDED", kopf.api.put(agent("billing", uid="uid-b")))
    ready = next(
        c for c in kopf.status("Tool", "ask-billing")["conditions"] if c["type"] == "Ready"
    )
    assert (ready["status"], ready["reason"]) == ("True", "Valid")
    assert url("Deployment", "support") in kopf.api.objects


@pytest.mark.anyio
async def test_a_deleted_persona_turns_its_users_not_ready() -> None:
    kopf = Kopf(*shared_fleet())
    await kopf.start()
    await kopf.event("DELETED", kopf.api.objects.pop(url("Persona", "tone")))
    for name in ("a", "b"):
        ready = next(c for c in kopf.status("Agent", name)["conditions"] if c["type"] == "Ready")
        assert (ready["status"], ready["reason"]) == ("False", "MissingReference")
    assert kopf.api.at(url("Agent", "bystander"))["status"]["conditions"][0]["status"] != "False"


@pytest.mark.anyio
async def test_a_secret_event_reconciles_its_users_only_when_its_data_changed() -> None:
    keyed = {"provider": "openai", "name": "m", "apiKeySecretRef": {"name": "key", "key": "k"}}
    kopf = Kopf(secret("key", k="v1"), agent("a", uid="uid-a", model=keyed), agent("other"))
    await kopf.start()
    reconciles = kopf.reconciles()
    relabelled = copy.deepcopy(kopf.api.at(url("Secret", "key")))
    relabelled["metadata"]["labels"] = {"team": "x"}
    await kopf.event("MODIFIED", kopf.api.put(relabelled))
    assert kopf.reconciles() == reconciles
    template = kopf.api.at(url("Deployment", "a"))["spec"]["template"]["metadata"]
    await kopf.event("MODIFIED", kopf.api.put(secret("key", k="v2")))
    assert kopf.reconciles() == reconciles + 1
    rolled = kopf.api.at(url("Deployment", "a"))["spec"]["template"]["metadata"]
    assert rolled["annotations"] != template["annotations"]


@pytest.mark.anyio
async def test_only_child_events_not_caused_by_the_operator_reconcile_the_agent() -> None:
    kopf = Kopf(agent("a", uid="uid-a"))
    for obj in list(kopf.api.objects.values()):
        await kopf.event(None, copy.deepcopy(obj))
    await kopf.reconciler.reconcile(NAMESPACE, "a")
    reconciles = kopf.reconciles()
    for kind, name in (("ConfigMap", "a-runtime"), ("Deployment", "a")):
        await kopf.event("ADDED", copy.deepcopy(kopf.api.at(url(kind, name))))
    assert kopf.reconciles() == reconciles
    deployment = kopf.api.at(url("Deployment", "a"))
    deployment["metadata"]["labels"]["app.kubernetes.io/managed-by"] = "edited-by-hand"
    deployment["metadata"]["resourceVersion"] = "changed-by-hand"
    await kopf.event("MODIFIED", copy.deepcopy(deployment))
    assert kopf.reconciles() == reconciles + 1


@pytest.mark.anyio
async def test_a_deployment_rolling_out_updates_the_agent_status_without_a_reconcile() -> None:
    kopf = Kopf(agent("a", uid="uid-a"))
    await kopf.start()
    reconciles = kopf.reconciles()
    kopf.api.reads.clear()
    deployment = kopf.api.at(url("Deployment", "a"))
    deployment["status"] = {
        "observedGeneration": deployment["metadata"]["generation"],
        **{key: 1 for key in ("replicas", "updatedReplicas", "readyReplicas")},
        "availableReplicas": 1,
    }
    deployment["metadata"]["resourceVersion"] = "changed-by-the-controller"
    await kopf.event("MODIFIED", copy.deepcopy(deployment))
    assert kopf.reconciles() == reconciles
    assert kopf.api.reads == []
    events = kube.path("v1", "Event", NAMESPACE)
    assert kopf.api.writes == [
        ("patch-status", "Agent", url("Agent", "a")),
        ("create", "Event", events),
    ]
    ready = next(c for c in kopf.status("Agent", "a")["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("True", "Available")
    assert kopf.status("Agent", "a")["availableReplicas"] == 1
