"""The operator benchmark's manifests: shared Personas and Tools, and the baseline objects."""

from __future__ import annotations

from bench import fleet, kubewatch


def test_one_persona_is_shared_by_a_fifth_of_a_thousand_agents() -> None:
    docs = fleet.fleet(1000, 5, 10)
    agents = [d for d in docs if d["kind"] == "Agent"]
    assert len(agents) == 1000
    assert [d["kind"] for d in docs[:15]] == ["Persona"] * 5 + ["Tool"] * 10
    users = fleet.users_of(0, 1000, 5)
    assert len(users) == 200
    by_name = {a["metadata"]["name"]: a for a in agents}
    assert {by_name[u]["spec"]["personaRef"]["name"] for u in users} == {"persona-0"}


def test_benchmark_pods_only_land_on_the_benchmarks_tainted_nodes() -> None:
    spec = fleet.agent(3, 5, 10)["spec"]
    node = fleet.node(0)
    assert spec["nodeSelector"].items() <= node["metadata"]["labels"].items()
    taint = node["spec"]["taints"][0]
    assert any(t["key"] == taint["key"] for t in spec["tolerations"])
    assert fleet.nodes_for(2400) == 10


def test_the_baseline_keeps_only_what_the_operator_owns_moved_to_its_namespace() -> None:
    rendered = [
        {"kind": "ConfigMap", "metadata": {"name": "a", "namespace": "default"}},
        {"kind": "Deployment", "metadata": {"name": "a", "namespace": "default"}},
        {"kind": "PodDisruptionBudget", "metadata": {"name": "a", "namespace": "default"}},
    ]
    moved = fleet.baseline(rendered, "bench-base")
    assert [(m["kind"], m["metadata"]["namespace"]) for m in moved] == [
        ("ConfigMap", "bench-base"),
        ("Deployment", "bench-base"),
    ]
    assert rendered[0]["metadata"]["namespace"] == "default"


def test_a_deployment_counts_as_rolled_only_when_every_replica_is_new_and_available() -> None:
    deployment = {
        "metadata": {"generation": 2},
        "spec": {"replicas": 1, "template": {"metadata": {"annotations": {"h": "x"}}}},
        "status": {
            "observedGeneration": 2,
            "updatedReplicas": 1,
            "replicas": 2,
            "availableReplicas": 2,
        },
    }
    assert not kubewatch.deployment_rolled(deployment)
    deployment["status"].update(replicas=1, availableReplicas=1)
    assert kubewatch.deployment_rolled(deployment)
    assert kubewatch.template_annotation(deployment, "h") == "x"


def test_an_agent_is_ready_only_for_its_current_generation() -> None:
    agent = {
        "metadata": {"generation": 3},
        "status": {"observedGeneration": 2, "conditions": [{"type": "Ready", "status": "True"}]},
    }
    assert not kubewatch.agent_ready(agent)
    agent["status"]["observedGeneration"] = 3
    assert kubewatch.agent_ready(agent)
