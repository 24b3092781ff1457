"""Which watch events make work (`scheduling.Scheduler`): status-only events and the echoes of
the operator's own writes never do; real changes queue exactly the Agents that depend on them
and the Personas and Tools whose status may change. The indexes are plain dicts built by the
index functions (`operator_testkit.cache`); nothing runs in the background here: the tests
read the queue."""

from __future__ import annotations

import asyncio
import base64
import copy
from typing import Any

import prometheus_client as prom
import pytest
from operator_testkit import NAMESPACE, FakeKube, agent, agent_tool, cache, http_tool, make_settings
from operator_testkit import persona as make_persona

from corral.api import groups
from corral.operator import hashing, mcpservers, metrics
from corral.operator.reconciling import Outcome, Reconciler
from corral.operator.scheduling import Scheduler


def secret(name: str, **data: str) -> dict[str, Any]:
    encoded = {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}
    meta = {"name": name, "namespace": NAMESPACE}
    return {"apiVersion": "v1", "kind": "Secret", "metadata": meta, "data": encoded}


def mcp_server(name: str = "orders-mcp", **spec: Any) -> dict[str, Any]:
    # Nothing listens on port 9: a discovery fails at once (Unreachable).
    spec = {"url": "http://127.0.0.1:9/mcp", "timeoutSeconds": 1, **spec}
    meta = {"name": name, "namespace": NAMESPACE}
    return {"apiVersion": groups.API_VERSION, "kind": "MCPServer", "metadata": meta, "spec": spec}


class World:
    """The API's objects, the cache over them, and a scheduler that has seen their listing."""

    def __init__(self, *objects: dict[str, Any]) -> None:
        self.api = FakeKube()
        for obj in objects:
            self.api.put(obj)
        self.scheduler = Scheduler(
            settings=make_settings(),
            reconciler=Reconciler(
                client=self.api,  # type: ignore[arg-type]
                settings=make_settings(),
                metrics=metrics.build(prom.CollectorRegistry()),
                indexes=cache(self.api),
            ),
            indexes=cache(self.api),
            clock=lambda: 0.0,
        )
        for obj in list(self.api.objects.values()):
            self.event(None, obj)
        self.drain()

    def event(self, event_type: str | None, obj: dict[str, Any]) -> None:
        """Deliver a watch event the way Kopf and `watching` do: the cache first, then the
        scheduler."""
        self.scheduler.indexes = cache(self.api)
        kind, s = obj["kind"], self.scheduler
        if kind in ("Persona", "Tool", "MCPServer"):
            s.referenced_seen(kind, event_type, obj)
        elif kind == "Secret":
            name = obj["metadata"]["name"]
            digest = hashing.secret_data_digest(NAMESPACE, name, obj.get("data"))
            s.secret_seen(event_type, NAMESPACE, name, digest)
        else:
            s.seen(kind, event_type, obj)

    def change(self, obj: dict[str, Any], spec: bool = True) -> None:
        """Someone else modifies `obj` (a new generation when `spec`)."""
        stored = self.api.put(obj)
        if spec:
            stored["metadata"]["generation"] = stored["metadata"].get("generation", 1) + 1
        self.event("MODIFIED", stored)

    def drain(self) -> set[tuple[str, str, str]]:
        """The keys due now (each marked done without a run)."""
        due = set()
        while (key := self.scheduler.queue.pop()) is not None:
            due.add(key)
            self.scheduler.queue.done(key, None)
        return due


def agents(*names: str) -> set[tuple[str, str, str]]:
    return {("Agent", NAMESPACE, name) for name in names}


def test_the_startup_listing_queues_every_agent_persona_and_tool() -> None:
    world = World(make_persona(), http_tool(), agent("a", personaRef={"name": "support-tone"}))
    world.scheduler.records.clear()
    world.scheduler.queue = type(world.scheduler.queue)(world.scheduler.clock)
    for obj in list(world.api.objects.values()):
        world.event(None, obj)
    assert world.drain() == {
        ("Agent", NAMESPACE, "a"),
        ("Persona", NAMESPACE, "support-tone"),
        ("Tool", NAMESPACE, "order-lookup"),
    }


def test_status_only_events_cause_no_work() -> None:
    tone = make_persona()
    world = World(tone, agent("a", personaRef={"name": "support-tone"}))
    for kind, _name in (("Persona", "support-tone"), ("Agent", "a")):
        url = next(u for u, o in world.api.objects.items() if o["kind"] == kind)
        obj = copy.deepcopy(world.api.objects[url])
        obj["status"] = {"observedGeneration": 1}
        world.change(obj, spec=False)
    assert world.drain() == set()


def test_a_persona_spec_change_queues_exactly_the_agents_using_it_and_itself() -> None:
    world = World(
        make_persona(),
        agent("a", personaRef={"name": "support-tone"}),
        agent("b", personaRef={"name": "support-tone"}),
        agent("bystander"),
    )
    world.change(make_persona(systemPrompt="Be brief."))
    assert world.drain() == agents("a", "b") | {("Persona", NAMESPACE, "support-tone")}


def test_a_secret_queues_its_users_only_when_its_data_changes() -> None:
    keyed = {
        "model": {"provider": "openai", "name": "m", "apiKeySecretRef": {"name": "k", "key": "v"}}
    }
    world = World(secret("k", v="one"), agent("a", **keyed), agent("bystander"))
    world.change(secret("k", v="one"), spec=False)
    assert world.drain() == set()
    world.change(secret("k", v="two"), spec=False)
    assert world.drain() == agents("a")


def test_a_secret_used_through_a_tool_header_queues_the_tools_users() -> None:
    header = {"headersFrom": [{"name": "Authorization", "secretKeyRef": {"name": "k", "key": "v"}}]}
    world = World(
        secret("k", v="one"), http_tool(**header), agent("a", tools=[{"name": "order-lookup"}])
    )
    world.change(secret("k", v="two"), spec=False)
    assert world.drain() == agents("a")


def test_an_agent_appearing_heals_the_agent_tool_calling_it_and_that_tools_users() -> None:
    world = World(
        agent_tool("ask-billing", "billing"), agent("support", tools=[{"name": "ask-billing"}])
    )
    world.event("ADDED", world.api.put(agent("billing")))
    assert world.drain() == agents("billing", "support") | {("Tool", NAMESPACE, "ask-billing")}


def child(api_version: str, kind: str, agent_name: str) -> dict[str, Any]:
    """A child object of Agent `agent_name`, labelled as the operator labels it."""
    return {
        "apiVersion": api_version,
        "kind": kind,
        "metadata": {
            "name": agent_name,
            "namespace": NAMESPACE,
            "labels": {"corral.dev/agent": agent_name},
        },
        "spec": {},
    }


def test_only_child_events_not_caused_by_the_operator_queue_the_agent() -> None:
    world = World(agent("a"))
    ours = world.api.put(child("apps/v1", "Deployment", "a"))
    key = ("Agent", NAMESPACE, "a")
    world.scheduler.record(key, Outcome(written={"Deployment": copy.deepcopy(ours)}))
    world.drain()
    world.event("MODIFIED", ours)
    assert world.drain() == set(), "the echo of our own write"
    world.change(copy.deepcopy(ours), spec=False)
    assert world.drain() == {key}, "a write by someone else (a rollout, a hand edit)"


def test_a_child_deleted_after_its_echo_came_early_is_not_taken_for_present() -> None:
    world = World(agent("a"))
    ours = world.api.put(child("v1", "Service", "a"))
    key = ("Agent", NAMESPACE, "a")
    world.event("ADDED", ours)  # the echo, before the run that wrote it has ended
    world.scheduler.record(key, Outcome(written={"Service": copy.deepcopy(ours)}))
    world.drain()
    world.event("DELETED", ours)  # deleted by hand
    assert world.drain() == {key}
    record = world.scheduler.records[key]
    assert record.newest("Service", None) is None, "our old write must not stand in for it"


def test_an_agent_that_stops_using_a_tool_queues_that_tools_status_and_nothing_else() -> None:
    world = World(
        http_tool("t1"), http_tool("t2"), agent("a", tools=[{"name": "t1"}, {"name": "t2"}])
    )
    key = ("Agent", NAMESPACE, "a")
    world.scheduler.record(
        key,
        Outcome(references=frozenset({("Tool", NAMESPACE, "t1"), ("Tool", NAMESPACE, "t2")})),
    )
    world.drain()
    world.scheduler.record(key, Outcome(references=frozenset({("Tool", NAMESPACE, "t1")})))
    assert world.drain() == {("Tool", NAMESPACE, "t2")}


def test_a_failure_is_retried_with_backoff_and_a_permanent_one_waits_for_a_change() -> None:
    from corral.operator import errors

    world = World(agent("a"))
    key = ("Agent", NAMESPACE, "a")
    s = world.scheduler
    first = s.record(key, Outcome(error=errors.MissingReference([])))
    second = s.record(key, Outcome(error=errors.ApiUnavailable("503")))
    assert (first[0], second[0]) == (5, 10)
    assert s.record(key, Outcome(error=errors.ApiConflict("409")))[0] == 1
    stalled = s.record(key, Outcome(error=errors.InvalidSpec("bad")))[0]
    assert stalled is not None
    assert stalled >= s.settings.drift_interval_seconds
    assert s.record(key, Outcome())[0] == stalled, "success: the drift check, failures reset"
    assert s.records[key].failures == 0


def test_a_secret_used_by_an_mcp_server_header_rediscovers_it_and_queues_its_users() -> None:
    header = {"headersFrom": [{"name": "Authorization", "secretKeyRef": {"name": "k", "key": "v"}}]}
    world = World(
        secret("k", v="one"), mcp_server(**header), agent("a", mcpServers=[{"name": "orders-mcp"}])
    )
    world.change(secret("k", v="one"), spec=False)
    assert world.drain() == set()
    world.change(secret("k", v="two"), spec=False)
    assert world.drain() == agents("a") | {("MCPServer", NAMESPACE, "orders-mcp")}


def test_an_mcp_server_spec_change_queues_its_agents_and_its_discovery() -> None:
    world = World(mcp_server(), agent("a", mcpServers=[{"name": "orders-mcp"}]), agent("b"))
    world.change(mcp_server(timeoutSeconds=2))
    assert world.drain() == agents("a") | {("MCPServer", NAMESPACE, "orders-mcp")}


def test_new_tool_names_in_an_mcp_servers_status_queue_the_agents_using_it() -> None:
    world = World(mcp_server(), agent("a", mcpServers=[{"name": "orders-mcp"}]), agent("b"))
    s = world.scheduler
    s.discoveries = mcpservers.Discoveries(
        client=world.api,  # type: ignore[arg-type]
        indexes=s.indexes,
        settings=make_settings(),
        metrics=metrics.build(prom.CollectorRegistry()),
        tools_changed=s.tools_changed,
    )
    stored = next(o for o in world.api.objects.values() if o["kind"] == "MCPServer")
    world.event(None, stored)  # its listing, before any discovery
    listed = mcp_server()
    listed["status"] = {"tools": [{"name": "lookup"}]}
    world.change(copy.deepcopy(listed), spec=False)
    assert world.drain() == agents("a"), "the first discovery listed tools"
    world.change(copy.deepcopy(listed), spec=False)
    assert world.drain() == set(), "the same names"
    listed["status"] = {"tools": [{"name": "lookup"}, {"name": "cancel"}]}
    world.change(copy.deepcopy(listed), spec=False)
    assert world.drain() == agents("a")


@pytest.mark.anyio
async def test_mcp_servers_are_discovered_only_while_this_process_leads() -> None:
    world = World(mcp_server())
    s = world.scheduler
    s.discoveries = mcpservers.Discoveries(
        client=world.api,  # type: ignore[arg-type]
        indexes=s.indexes,
        settings=make_settings(),
        metrics=metrics.build(prom.CollectorRegistry()),
        tools_changed=s.tools_changed,
    )
    world.event("MODIFIED", world.api.put(mcp_server(timeoutSeconds=2)))
    assert s.discoveries.running == [], "a standby discovers nothing"
    lead = asyncio.create_task(s.lead())
    await asyncio.sleep(0)
    assert s.discoveries.running == [(NAMESPACE, "orders-mcp")]
    world.event("ADDED", world.api.put(mcp_server("third")))
    assert s.discoveries.running == [(NAMESPACE, "orders-mcp"), (NAMESPACE, "third")]
    lead.cancel()
    await asyncio.gather(lead, return_exceptions=True)
    assert s.discoveries.running == [], "losing the Lease stops every discovery"
    world.event("MODIFIED", world.api.put(mcp_server("third", timeoutSeconds=2)))
    assert s.discoveries.running == []


def test_a_state_store_password_change_queues_exactly_the_agents_using_it() -> None:
    ref = {"name": "redis", "key": "password"}
    store = {"stateStore": {"url": "redis://valkey:6379/0", "passwordSecretRef": ref}}
    world = World(secret("redis", password="one"), agent("a", **store), agent("bystander"))
    world.change(secret("redis", password="two"), spec=False)
    assert world.drain() == agents("a")


@pytest.mark.anyio
async def test_a_run_that_raises_is_logged_and_retried_and_the_others_still_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    world = World(agent("broken"), agent("fine"))
    s = world.scheduler
    ran: list[str] = []
    finished = asyncio.Event()

    async def reconcile(key: tuple[str, str, str], record: Any) -> Outcome:
        ran.append(key[2])
        if key[2] == "broken":
            raise RuntimeError("a bug")
        finished.set()
        return Outcome()

    s.reconciler.agent = reconcile  # type: ignore[method-assign]
    s.queue.add(("Agent", NAMESPACE, "broken"))
    s.queue.add(("Agent", NAMESPACE, "fine"))
    lead = asyncio.create_task(s.lead())
    await asyncio.wait_for(finished.wait(), 5)
    assert not lead.done(), "the scheduler keeps running"
    lead.cancel()
    await asyncio.gather(lead, return_exceptions=True)
    assert ran == ["broken", "fine"]
    assert "the run failed; retrying" in caplog.text
    assert s.queue.next_due() == s.settings.retry_base_seconds, "the broken one is retried"


@pytest.mark.anyio
async def test_a_run_cancelled_when_leading_stops_is_due_again_when_it_resumes() -> None:
    world = World(agent("a"))
    s = world.scheduler
    started, forever = asyncio.Event(), asyncio.Event()

    async def reconcile(key: tuple[str, str, str], record: Any) -> Outcome:
        started.set()
        await forever.wait()
        return Outcome()

    s.reconciler.agent = reconcile  # type: ignore[method-assign]
    s.queue.add(("Agent", NAMESPACE, "a"))
    lead = asyncio.create_task(s.lead())
    await asyncio.wait_for(started.wait(), 5)
    lead.cancel()
    await asyncio.gather(lead, return_exceptions=True)
    assert s.queue.running() == set()
    assert s.queue.pop() == ("Agent", NAMESPACE, "a"), "due at once, not only at its next event"


@pytest.mark.anyio
async def test_nothing_runs_before_every_cache_holds_its_first_listing() -> None:
    world = World(agent("a"))
    s = world.scheduler
    listed, done = asyncio.Event(), asyncio.Event()
    ran: list[str] = []

    async def observed() -> None:
        await listed.wait()

    async def reconcile(key: tuple[str, str, str], record: Any) -> Outcome:
        ran.append(key[2])
        done.set()
        return Outcome()

    s.observed = observed
    s.reconciler.agent = reconcile  # type: ignore[method-assign]
    s.queue.add(("Agent", NAMESPACE, "a"))
    lead = asyncio.create_task(s.lead())
    for _ in range(20):
        await asyncio.sleep(0)
    assert ran == [], "an Agent's Persona may not be listed yet: it would be taken for missing"
    listed.set()
    await asyncio.wait_for(done.wait(), 5)
    lead.cancel()
    await asyncio.gather(lead, return_exceptions=True)
    assert ran == ["a"]
