"""The operator's process lifecycle end to end: idle and restarted operators write nothing,
`-n` scoping, and surviving an API server restart. Each test runs an operator of its own."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from operator_e2e import (
    Cluster,
    OperatorProcess,
    config_hash,
    wait_for,
    wait_ready,
)
from operator_manifests import agent, full_set, persona

from localcluster import binaries, cluster, handles, output, processes

pytestmark = pytest.mark.cluster
IDLE_SECONDS = 30
OperatorFactory = Callable[[list[str]], OperatorProcess]


OBSERVED = (
    ("corral.dev/v1alpha1", "Agent", "support"),
    ("corral.dev/v1alpha1", "Agent", "billing"),
    ("corral.dev/v1alpha1", "Persona", "support-tone"),
    ("corral.dev/v1alpha1", "Tool", "order-lookup"),
    ("corral.dev/v1alpha1", "Tool", "ask-billing"),
    ("apps/v1", "Deployment", "support"),
    ("v1", "Service", "support"),
    ("v1", "ConfigMap", "support-runtime"),
    ("policy/v1", "PodDisruptionBudget", "support"),
)


def settled(kube: Cluster, ns: str) -> dict[str, str]:
    """Resource versions once both Agents are Ready and the Persona lists its user."""
    wait_for(
        "the Persona lists the support Agent",
        lambda: (
            (kube.get("corral.dev/v1alpha1", "Persona", ns, "support-tone") or {})
            .get("status", {})
            .get("usedBy")
        ),
        30,
    )
    return kube.resource_versions(ns, *OBSERVED)


def test_an_idle_or_restarted_operator_makes_zero_writes(
    kube: Cluster, operator_factory: OperatorFactory, own_namespaces: Callable[[], str]
) -> None:
    ns = own_namespaces()
    operator = operator_factory([ns])
    kube.apply(ns, *full_set())
    wait_ready(kube, operator, ns, "support")
    wait_ready(kube, operator, ns, "billing")
    before = settled(kube, ns)
    writes = operator.metric("corral_operator_api_writes_total")
    events = len(kube.events(ns))

    # Half a minute of idling spans periodic drift checks (every 10 s in these tests).
    deadline = time.monotonic() + IDLE_SECONDS
    while time.monotonic() < deadline:
        assert kube.resource_versions(ns, *OBSERVED) == before, operator.log_tail()
        time.sleep(5)
    assert operator.metric("corral_operator_reconciles_total", kind="Agent") > 2
    assert operator.metric("corral_operator_api_writes_total") == writes

    operator.restart()
    wait_for(
        "the restarted operator resumed both Agents and saw the Persona and both Tools",
        lambda: (
            operator.metric("corral_operator_reconciles_total", kind="Agent") >= 2
            and operator.metric("corral_operator_reconciles_total", kind="Persona") >= 1
            and operator.metric("corral_operator_reconciles_total", kind="Tool") >= 2
        ),
        60,
        operator.log_tail,
    )
    assert operator.metric("corral_operator_api_writes_total") == 0, operator.log_tail()
    assert kube.resource_versions(ns, *OBSERVED) == before
    assert len(kube.events(ns)) == events


def test_an_operator_scoped_to_one_namespace_reconciles_only_that_namespace(
    kube: Cluster, operator_factory: OperatorFactory, own_namespaces: Callable[[], str]
) -> None:
    watched, ignored = own_namespaces(), own_namespaces()
    operator = operator_factory([watched])
    kube.apply(ignored, agent("support"))
    kube.apply(watched, agent("support"))
    wait_ready(kube, operator, watched, "support")
    untouched = kube.agent(ignored, "support") or {}
    assert not untouched.get("status", {}).get("conditions"), untouched
    assert "corral.dev/last-handled-configuration" not in untouched["metadata"].get(
        "annotations", {}
    )
    assert kube.deployment(ignored, "support") is None
    assert operator.metric("corral_operator_managed_objects", kind="Agent") == 1


def persona_ready(kube: Cluster, ns: str) -> bool:
    body = kube.get("corral.dev/v1alpha1", "Persona", ns, "support-tone") or {}
    conditions = (body.get("status") or {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def test_an_operator_reconciles_a_namespace_without_agents_and_one_that_starts_empty(
    kube: Cluster, operator_factory: OperatorFactory, own_namespaces: Callable[[], str]
) -> None:
    # The first run waits until Kopf's indexes hold their first listing, which Kopf tells only
    # by calling a handler: a Persona's when there is no Agent, an Agent's when the namespace
    # started empty (Kopf then calls none until something is created).
    lone, empty = own_namespaces(), own_namespaces()
    kube.apply(lone, persona())
    first = operator_factory([lone])
    wait_for("the Persona no Agent uses is Ready", lambda: persona_ready(kube, lone), 60)
    assert first.metric("corral_operator_reconciles_total", kind="Persona") >= 1

    second = operator_factory([empty])
    time.sleep(2)  # the operator is up, its watches listed nothing
    kube.apply(empty, agent("support"))
    wait_ready(kube, second, empty, "support")


def restart_apiserver(handle: handles.Cluster) -> None:
    """Stop the shared kube-apiserver and start it again, waiting until it is ready.

    Composed from hack/localcluster's public functions under its lock; see the report for the
    `cluster.restart_component` it could offer instead.
    """
    config = handle.config
    with cluster.lock(config):
        processes.stop(config, "kube-apiserver")
        cluster.start(config, binaries.ensure(config), output.stderr)


def test_the_operator_survives_an_api_server_restart_and_converges(
    kube: Cluster,
    operator_factory: OperatorFactory,
    own_namespaces: Callable[[], str],
    cluster: handles.Cluster,
) -> None:
    ns = own_namespaces()
    operator = operator_factory([ns])
    kube.apply(ns, persona(), agent("support", personaRef={"name": "support-tone"}))
    wait_ready(kube, operator, ns, "support")
    before = config_hash(kube.deployment(ns, "support"))

    restart_apiserver(cluster)
    assert operator.alive(), operator.log_tail()
    kube.apply(ns, persona(prompt="Answer in one sentence."))
    wait_for(
        "the changed Persona rolls the Deployment after the restart",
        lambda: config_hash(kube.deployment(ns, "support")) not in (None, before),
        90,
        operator.log_tail,
    )
    wait_ready(kube, operator, ns, "support")
