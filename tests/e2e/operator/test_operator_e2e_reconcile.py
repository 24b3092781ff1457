"""The operator end to end (controller-manager, scheduler, kwok): Agents become Ready runtime
Deployments, related changes roll exactly the Agents that use them, drift is reverted,
deletion garbage-collects, missing references heal. One shared operator process."""

from __future__ import annotations

import json

import pytest
from operator_e2e import Cluster, OperatorProcess, config_hash, ready, rolled_out, wait_for
from operator_manifests import agent, full_set, http_tool, persona, secret

import kstatus

pytestmark = pytest.mark.cluster
READY_TIMEOUT = 90


def wait_ready(kube: Cluster, op: OperatorProcess, namespace: str, name: str) -> dict:
    wait_for(
        f"Agent {namespace}/{name} Ready=True",
        lambda: ready(kube.agent(namespace, name)) == ("True", "Available"),
        READY_TIMEOUT,
        lambda: f"{kube.agent(namespace, name)}\n{op.log_tail()}",
    )
    agent = kube.agent(namespace, name)
    assert agent is not None
    return agent


def test_an_applied_agent_becomes_ready_behind_a_hardened_deployment(
    kube: Cluster, shared_operator: OperatorProcess, watched_namespace: str
) -> None:
    ns = watched_namespace
    kube.apply(ns, *full_set())
    agent = wait_ready(kube, shared_operator, ns, "support")
    status = agent["status"]
    assert status["endpoint"] == f"http://support.{ns}.svc:8080/v1"
    assert (status["replicas"], status["availableReplicas"]) == (2, 2)
    assert {c["type"]: c["status"] for c in status["conditions"]}["ReferencesResolved"] == "True"

    deployment = kube.deployment(ns, "support")
    assert deployment is not None
    pod = deployment["spec"]["template"]["spec"]
    runtime = pod["containers"][0]
    assert runtime["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert runtime["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert runtime["startupProbe"]["httpGet"]["path"] == "/healthz"
    assert runtime["securityContext"]["readOnlyRootFilesystem"] is True
    assert runtime["securityContext"]["allowPrivilegeEscalation"] is False
    assert runtime["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in runtime["env"]}
    assert refs == {
        "CORRAL_MODEL_0_API_KEY": {"name": "openai", "key": "api-key"},
        "CORRAL_TOOL_0_HEADER_0": {"name": "orders", "key": "token"},
    }
    assert deployment["metadata"]["ownerReferences"][0]["uid"] == agent["metadata"]["uid"]
    assert kube.get("policy/v1", "PodDisruptionBudget", ns, "support") is not None

    configmap = kube.get("v1", "ConfigMap", ns, "support-runtime")
    assert configmap is not None
    config = json.loads(configmap["data"]["runtime.json"])
    assert config["tools"][1]["agent"]["baseURL"] == f"http://billing.{ns}.svc:8080/v1"
    assert "sk-e2e-not-real" not in json.dumps(configmap)

    for kind, name in (("Persona", "support-tone"), ("Tool", "order-lookup")):
        used = wait_for(
            f"{kind} {name} lists its users",
            lambda k=kind, n=name: (
                (kube.get("corral.dev/v1alpha1", k, ns, n) or {}).get("status", {}).get("usedBy")
            ),
            30,
            shared_operator.log_tail,
        )
        assert used == ["support"]
    verdict = kstatus.compute(kstatus.ensure(kube.handle.config), kube.agent(ns, "support") or {})
    assert verdict["status"] == "Current", verdict
    printed = kube.kubectl("get", "agents", "-n", ns)
    assert "support" in printed
    assert "Available" in printed


def test_changing_a_persona_tool_or_secret_rolls_only_the_agents_that_use_them(
    kube: Cluster, shared_operator: OperatorProcess, watched_namespace: str
) -> None:
    ns = watched_namespace
    kube.apply(ns, *full_set(), agent("bystander"))
    wait_ready(kube, shared_operator, ns, "support")
    wait_ready(kube, shared_operator, ns, "bystander")
    wait_for("bystander rolled out", lambda: rolled_out(kube.deployment(ns, "bystander")), 60)
    bystander = (("apps/v1", "Deployment", "bystander"), ("v1", "ConfigMap", "bystander-runtime"))
    untouched = kube.resource_versions(ns, *bystander)

    for change in (
        persona(prompt="You are a very patient support engineer."),
        http_tool(timeout=20),
        secret("openai", **{"api-key": "sk-e2e-rotated"}),
        secret("orders", token="Bearer rotated"),
    ):
        before = config_hash(kube.deployment(ns, "support"))
        kube.apply(ns, change)
        wait_for(
            f"the support pods roll after {change['kind']} {change['metadata']['name']} changed",
            lambda b=before: config_hash(kube.deployment(ns, "support")) not in (None, b),
            60,
            shared_operator.log_tail,
        )
    wait_ready(kube, shared_operator, ns, "support")
    assert kube.events(ns, reason="RollingOut"), "a rollout posts a RollingOut Event"
    assert kube.resource_versions(ns, *bystander) == untouched


def test_hand_edits_to_the_deployment_are_reverted(
    kube: Cluster, shared_operator: OperatorProcess, watched_namespace: str
) -> None:
    ns = watched_namespace
    kube.apply(ns, agent("support"))
    wait_ready(kube, shared_operator, ns, "support")
    kube.kubectl("set", "image", "-n", ns, "deployment/support", "runtime=evil.example/x:1")
    kube.kubectl(
        "patch", "-n", ns, "deployment/support", "--type=json",
        "-p", '[{"op": "remove", "path": "/spec/template/spec/containers/0/livenessProbe"}]',
    )  # fmt: skip

    def restored() -> bool:
        runtime = (kube.deployment(ns, "support") or {})["spec"]["template"]["spec"]["containers"][
            0
        ]
        return runtime["image"] == "registry.test/corral:e2e" and "livenessProbe" in runtime

    wait_for("the hand edits are reverted", restored, 60, shared_operator.log_tail)
    # The Event follows the write that reverted the edits.
    wait_for(
        "a DriftReverted Event",
        lambda: kube.events(ns, reason="DriftReverted"),
        10,
        shared_operator.log_tail,
    )


def test_a_child_deleted_by_hand_is_created_again_each_time(
    kube: Cluster, shared_operator: OperatorProcess, watched_namespace: str
) -> None:
    ns = watched_namespace
    kube.apply(ns, agent("support"))
    wait_ready(kube, shared_operator, ns, "support")
    # Twice: the second deletion follows a Service the operator itself just created, whose
    # watch echo may come before the run that created it ends.
    for attempt in (1, 2):
        before = kube.get("v1", "Service", ns, "support")
        assert before is not None
        kube.kubectl("delete", "service", "support", "-n", ns, "--wait=true")

        def created_again(old_uid: str = before["metadata"]["uid"]) -> bool:
            service = kube.get("v1", "Service", ns, "support") or {}
            return service.get("metadata", {}).get("uid") not in (None, old_uid)

        wait_for(
            f"the Service deleted by hand is created again (deletion {attempt})",
            created_again,
            30,
            shared_operator.log_tail,
        )
    created = [e for e in kube.events(ns, reason="Created") if "Service" in e.get("message", "")]
    assert len(created) >= 2, created


def test_deleting_an_agent_garbage_collects_its_children(
    kube: Cluster, shared_operator: OperatorProcess, watched_namespace: str
) -> None:
    ns = watched_namespace
    kube.apply(ns, agent("support", replicas=2))
    wait_ready(kube, shared_operator, ns, "support")
    kube.kubectl("delete", "agent", "support", "-n", ns, "--wait=true", "--timeout=60s")
    children = (
        ("apps/v1", "Deployment", "support"),
        ("v1", "Service", "support"),
        ("v1", "ConfigMap", "support-runtime"),
        ("policy/v1", "PodDisruptionBudget", "support"),
    )
    wait_for(
        "every child of the deleted Agent is garbage-collected",
        lambda: set(kube.resource_versions(ns, *children).values()) == {"absent"},
        60,
        lambda: str(kube.resource_versions(ns, *children)),
    )


def test_a_missing_persona_is_reported_and_heals_once_it_is_created(
    kube: Cluster, shared_operator: OperatorProcess, watched_namespace: str
) -> None:
    ns = watched_namespace
    kube.apply(ns, agent("support", personaRef={"name": "support-tone"}))
    wait_for(
        "Ready=False with reason MissingReference",
        lambda: ready(kube.agent(ns, "support")) == ("False", "MissingReference"),
        60,
        shared_operator.log_tail,
    )
    conditions = {c["type"]: c for c in kube.agent(ns, "support")["status"]["conditions"]}
    assert "Persona 'support-tone'" in conditions["Ready"]["message"]
    assert kube.deployment(ns, "support") is None
    assert kube.events(ns, reason="MissingReference")
    kube.apply(ns, persona())
    wait_ready(kube, shared_operator, ns, "support")


def corral_owns_replicas(deployment: dict) -> bool:
    for entry in deployment["metadata"].get("managedFields") or []:
        if entry.get("manager") == "corral" and entry.get("operation") == "Apply":
            return "f:replicas" in (entry.get("fieldsV1") or {}).get("f:spec", {})
    return False


def test_autoscaling_hands_the_replica_count_to_an_hpa_the_operator_never_fights(
    kube: Cluster, shared_operator: OperatorProcess, watched_namespace: str
) -> None:
    ns = watched_namespace
    kube.apply(ns, agent("support", replicas=3))
    wait_ready(kube, shared_operator, ns, "support")
    kube.apply(ns, agent("support", autoscaling={"minReplicas": 2, "maxReplicas": 5}))
    hpa = wait_for(
        "the Agent's HorizontalPodAutoscaler",
        lambda: kube.get("autoscaling/v2", "HorizontalPodAutoscaler", ns, "support"),
        60,
        shared_operator.log_tail,
    )
    assert hpa["metadata"]["ownerReferences"][0]["kind"] == "Agent"
    assert hpa["spec"]["scaleTargetRef"]["name"] == "support"
    deployment = kube.deployment(ns, "support") or {}
    assert deployment["spec"]["replicas"] == 3, "dropping replicas must not reset it to 1"
    assert not corral_owns_replicas(deployment)

    # A fresh Agent: the HPA controller (kube-controller-manager) raises it to minReplicas,
    # and the operator's drift checks (every 10 s here) leave the HPA's count alone.
    kube.apply(ns, agent("scaled", autoscaling={"minReplicas": 2, "maxReplicas": 4}))
    wait_for(
        "the HPA scales the new Agent to its minimum and the status reports it",
        lambda: (
            ((kube.agent(ns, "scaled") or {}).get("status") or {}).get("desiredReplicas") == 2
            and ready(kube.agent(ns, "scaled")) == ("True", "Available")
        ),
        120,
        lambda: f"{kube.agent(ns, 'scaled')}\n{shared_operator.log_tail()}",
    )
    status = (kube.agent(ns, "scaled") or {})["status"]
    assert status["currentReplicas"] == 2
    assert status["availableReplicas"] == 2
    scaled = kube.deployment(ns, "scaled") or {}
    assert scaled["spec"]["replicas"] == 2
    assert not corral_owns_replicas(scaled)
