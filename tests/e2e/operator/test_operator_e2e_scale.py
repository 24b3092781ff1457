"""Many Agents sharing a few Personas and Tools: once they are Ready, the operator is silent.

Reproduces the benchmark's idle write loop (bench/PROFILE.md): status refreshes of shared
Personas and Tools feeding back into reconciles of every Agent that uses them. Runs an
operator of its own, so its write counter and the namespace's objects are this test's alone.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from operator_e2e import Cluster, OperatorProcess, ready, rolled_out, wait_for
from operator_manifests import agent, http_tool, persona, secret

pytestmark = pytest.mark.cluster
AGENTS = 40
IDLE_SECONDS = 20
API = "corral.dev/v1alpha1"
OBSERVED_KINDS = (
    (API, "Agent"),
    (API, "Persona"),
    (API, "Tool"),
    ("apps/v1", "Deployment"),
    ("v1", "Service"),
    ("v1", "ConfigMap"),
    ("policy/v1", "PodDisruptionBudget"),
)


def fleet() -> tuple[list[dict[str, Any]], dict[str, list[str]]]:
    """Agent i uses Persona tone-(i % 2), Tool lookup-0, and lookup-1 when i is odd; and the
    `usedBy` each Persona and Tool should end up with."""
    names = [f"agent-{i:02d}" for i in range(AGENTS)]
    agents = [
        agent(
            name,
            personaRef={"name": f"tone-{i % 2}"},
            tools=[{"name": "lookup-0"}, {"name": "lookup-1"}][: 1 + i % 2],
        )
        for i, name in enumerate(names)
    ]
    used_by = {
        "Persona/tone-0": names[0::2],
        "Persona/tone-1": names[1::2],
        "Tool/lookup-0": names,
        "Tool/lookup-1": names[1::2],
    }
    shared = [secret("orders", token="Bearer e2e-token"), persona("tone-0"), persona("tone-1")]
    return [*shared, http_tool("lookup-0"), http_tool("lookup-1"), *agents], used_by


def not_ready(kube: Cluster, ns: str) -> list[str]:
    """Names of the Agents that are not Ready=True/Available for their generation."""
    agents = kube.listed(ns, API, "Agent")
    missing = AGENTS - len(agents)
    waiting = [a["metadata"]["name"] for a in agents if ready(a) != ("True", "Available")]
    return waiting + ["(not created yet)"] * missing


def used_by(kube: Cluster, ns: str) -> dict[str, list[str]]:
    return {
        f"{kind}/{obj['metadata']['name']}": (obj.get("status") or {}).get("usedBy", [])
        for kind in ("Persona", "Tool")
        for obj in kube.listed(ns, API, kind)
    }


def test_an_idle_operator_with_forty_agents_sharing_personas_and_tools_makes_zero_writes(
    kube: Cluster,
    operator_factory: Callable[[list[str]], OperatorProcess],
    own_namespaces: Callable[[], str],
) -> None:
    ns = own_namespaces()
    operator = operator_factory([ns])
    docs, expected_used_by = fleet()
    kube.apply(ns, *docs)
    wait_for(
        f"all {AGENTS} Agents Ready=True",
        lambda: not not_ready(kube, ns),
        180,
        lambda: f"not ready: {not_ready(kube, ns)}\n{operator.log_tail()}",
        interval=2,
    )
    wait_for(
        "every Deployment rolled out",
        lambda: all(rolled_out(d) for d in kube.listed(ns, "apps/v1", "Deployment")),
        60,
        operator.log_tail,
    )
    wait_for(
        "the Personas and Tools list exactly the Agents using them",
        lambda: used_by(kube, ns) == expected_used_by,
        30,
        lambda: f"usedBy: {used_by(kube, ns)}\n{operator.log_tail()}",
    )
    before = kube.listed_versions(ns, *OBSERVED_KINDS)
    writes = operator.metric("corral_operator_api_writes_total")
    reconciles = operator.metric("corral_operator_reconciles_total", kind="Agent")
    events = len(kube.events(ns))

    # Twice the drift-check interval of these tests (10 s): every Agent is reconciled again.
    deadline = time.monotonic() + IDLE_SECONDS
    while time.monotonic() < deadline:
        time.sleep(5)
        now = kube.listed_versions(ns, *OBSERVED_KINDS)
        changed = sorted(k for k in before.keys() | now.keys() if before.get(k) != now.get(k))
        assert not changed, f"changed while idle: {changed}\n{operator.log_tail()}"
    assert operator.metric("corral_operator_api_writes_total") == writes, operator.log_tail()
    assert operator.metric("corral_operator_reconciles_total", kind="Agent") >= reconciles + AGENTS
    assert len(kube.events(ns)) == events
