"""Everything the Agent page shows, gathered concurrently with the user's credentials. Does I/O.

The Agent, its recent Events (and its Deployment's), the rollout (the Deployment it controls
and that Deployment's pods), the Persona, Tools and MCPServers it references with their own
readiness, and a metrics snapshot read from each running pod's `/metrics` through the API
server's pods proxy. A part the user may not read, or that fails, is reported in its place
(`problems`) instead of failing the page. Called by the Agent routes.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
from collections.abc import Awaitable, Mapping
from typing import Any, TypeVar

import yaml

from corral.api import groups
from corral.console import diffs, kinds, kube, rows, snapshots

T = TypeVar("T")
EVENT_LIMIT = 20
HTTP_PORT_NAME = "http"


@dataclasses.dataclass(frozen=True)
class Reference:
    """An object the Agent names: its row, or why it cannot be shown."""

    kind: str
    name: str
    row: rows.Row | None
    problem: str = ""


@dataclasses.dataclass(frozen=True)
class Pod:
    name: str
    phase: str
    ready: str  # "1/1"
    restarts: int
    age: str
    port: int  # the runtime container's `http` port, where /metrics is served


@dataclasses.dataclass(frozen=True)
class Rollout:
    desired: int | None
    updated: int
    ready: int
    available: int
    pods: list[Pod]


@dataclasses.dataclass(frozen=True)
class Metrics:
    snapshot: snapshots.Snapshot | None
    problems: list[str]


@dataclasses.dataclass(frozen=True)
class AgentDetail:
    agent: dict[str, Any]
    row: rows.Row
    spec_yaml: str
    conditions: list[dict[str, Any]]
    events: list[dict[str, Any]]
    rollout: Rollout | None
    references: list[Reference]
    problems: dict[str, str]  # section -> why it is missing


async def agent_detail(
    client: kube.Kube, namespace: str, name: str, now: datetime.datetime
) -> AgentDetail | None:
    """The Agent page's data; None when the Agent does not exist (KubeError when unreadable)."""
    agent = await client.find(kinds.AGENT.item(namespace, name))
    if agent is None:
        return None
    problems: dict[str, str] = {}
    deployment = await _section(problems, "rollout", _deployment(client, agent))
    events, references, pods = await asyncio.gather(
        _section(problems, "events", _events(client, agent, deployment)),
        _references(client, agent, now),
        _section(problems, "rollout", _pods(client, deployment, now)),
    )
    spec = {"spec": agent.get("spec") or {}}
    return AgentDetail(
        agent=agent,
        row=rows.row(agent, now),
        spec_yaml=yaml.safe_dump(diffs.editable(agent) | spec, sort_keys=False),
        conditions=list((agent.get("status") or {}).get("conditions") or []),
        events=events or [],
        rollout=_rollout(deployment, pods or []) if deployment else None,
        references=references,
        problems=problems,
    )


async def agent_metrics(
    client: kube.Kube, namespace: str, name: str, now: datetime.datetime
) -> Metrics:
    """The metrics snapshot of the Agent's running pods (read through the pods proxy)."""
    try:
        agent = await client.find(kinds.AGENT.item(namespace, name))
        if agent is None:
            return Metrics(None, [f"Agent {namespace}/{name} does not exist"])
        pods = await _pods(client, await _deployment(client, agent), now)
    except kube.KubeError as err:
        return Metrics(None, [err.message])
    return await _metrics(client, namespace, pods)


async def _section(problems: dict[str, str], name: str, work: Awaitable[T]) -> T | None:
    try:
        return await work
    except kube.KubeError as err:
        problems.setdefault(name, err.message)
        return None


async def _deployment(client: kube.Kube, agent: Mapping[str, Any]) -> dict[str, Any] | None:
    """The Deployment the Agent controls (same name, owned by this Agent's uid)."""
    meta = agent["metadata"]
    found = await client.find(kinds.DEPLOYMENT.item(meta["namespace"], meta["name"]))
    owners = ((found or {}).get("metadata") or {}).get("ownerReferences") or []
    return found if any(o.get("uid") == meta.get("uid") for o in owners) else None


async def _events(
    client: kube.Kube, agent: Mapping[str, Any], deployment: Mapping[str, Any] | None
) -> list[dict[str, Any]]:
    namespace = agent["metadata"]["namespace"]
    uids = [agent["metadata"]["uid"]]
    if deployment is not None:
        uids.append(deployment["metadata"]["uid"])
    bodies = await asyncio.gather(
        *(
            client.get(
                kinds.EVENT.collection(namespace), {"fieldSelector": f"involvedObject.uid={uid}"}
            )
            for uid in uids
        )
    )
    events = [e for body in bodies for e in body.get("items") or []]
    events.sort(key=_event_time, reverse=True)
    return events[:EVENT_LIMIT]


def _event_time(event: Mapping[str, Any]) -> str:
    return str(
        event.get("lastTimestamp")
        or event.get("eventTime")
        or (event.get("metadata") or {}).get("creationTimestamp")
        or ""
    )


async def _pods(
    client: kube.Kube, deployment: Mapping[str, Any] | None, now: datetime.datetime
) -> list[Pod]:
    if deployment is None:
        return []
    labels = ((deployment.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    selector = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
    namespace = deployment["metadata"]["namespace"]
    body = await client.get(kinds.POD.collection(namespace), {"labelSelector": selector})
    return [_pod(p, now) for p in body.get("items") or []]


def _pod(pod: Mapping[str, Any], now: datetime.datetime) -> Pod:
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    containers = (pod.get("spec") or {}).get("containers") or []
    return Pod(
        name=str(pod["metadata"]["name"]),
        phase=str((pod.get("status") or {}).get("phase", "Unknown")),
        ready=f"{sum(1 for s in statuses if s.get('ready'))}/{len(containers)}",
        restarts=sum(int(s.get("restartCount", 0)) for s in statuses),
        age=rows.age(pod["metadata"].get("creationTimestamp"), now),
        port=_http_port(containers),
    )


def _http_port(containers: list[dict[str, Any]]) -> int:
    """The container port named `http` (the operator's name for the runtime's port)."""
    for container in containers:
        for port in container.get("ports") or []:
            if port.get("name") == HTTP_PORT_NAME and port.get("containerPort"):
                return int(port["containerPort"])
    return groups.RUNTIME_PORT


def _rollout(deployment: Mapping[str, Any], pods: list[Pod]) -> Rollout:
    spec, status = deployment.get("spec") or {}, deployment.get("status") or {}
    return Rollout(
        desired=spec.get("replicas"),
        updated=int(status.get("updatedReplicas", 0)),
        ready=int(status.get("readyReplicas", 0)),
        available=int(status.get("availableReplicas", 0)),
        pods=pods,
    )


async def _references(
    client: kube.Kube, agent: Mapping[str, Any], now: datetime.datetime
) -> list[Reference]:
    spec = agent.get("spec") or {}
    namespace = agent["metadata"]["namespace"]
    named: list[tuple[kinds.Kind, str]] = []
    if (spec.get("personaRef") or {}).get("name"):
        named.append((kinds.PERSONA, spec["personaRef"]["name"]))
    named += [(kinds.TOOL, t["name"]) for t in spec.get("tools") or [] if t.get("name")]
    named += [(kinds.MCPSERVER, m["name"]) for m in spec.get("mcpServers") or [] if m.get("name")]
    return list(await asyncio.gather(*(_reference(client, k, namespace, n, now) for k, n in named)))


async def _reference(
    client: kube.Kube, kind: kinds.Kind, namespace: str, name: str, now: datetime.datetime
) -> Reference:
    try:
        found = await client.find(kind.item(namespace, name))
    except kube.KubeError as err:
        return Reference(kind.kind, name, None, err.message)
    if found is None:
        return Reference(kind.kind, name, None, f"{kind.kind} {namespace}/{name} does not exist")
    found.setdefault("kind", kind.kind)
    return Reference(kind.kind, name, rows.row(found, now))


async def _metrics(client: kube.Kube, namespace: str, pods: list[Pod]) -> Metrics:
    running = [p for p in pods if p.phase == "Running"]
    if not running:
        return Metrics(None, ["no running pod to read /metrics from"] if pods else [])
    results = await asyncio.gather(*(_scrape(client, namespace, p) for p in running))
    samples = [r for r in results if isinstance(r, snapshots.PodSample)]
    problems = [r for r in results if isinstance(r, str)]
    return Metrics(snapshots.combine(samples) if samples else None, problems)


async def _scrape(client: kube.Kube, namespace: str, pod: Pod) -> snapshots.PodSample | str:
    path = f"{kinds.POD.item(namespace, pod.name)}:{pod.port}/proxy/metrics"
    try:
        return snapshots.parse(await client.proxy_text(path))
    except kube.KubeError as err:
        return f"could not read /metrics of pod {pod.name}: {err.message}"
    except snapshots.NotExposition as err:
        return f"could not read /metrics of pod {pod.name}: {err}"
