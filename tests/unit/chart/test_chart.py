"""The Helm chart, offline: it lints strictly, its schema covers and checks every value, its
CRDs are the repository's, and the plain manifests in deploy/ are generated from it."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

import deploymanifests
from localcluster import binaries, settings

ROOT = Path(__file__).resolve().parents[3]
CHART = ROOT / "charts" / "corral"


@pytest.fixture(scope="module")
def helm() -> Path:
    return binaries.ensure(settings.Settings.from_env(), ["helm"])["helm"]


def template(helm: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(helm), "template", "corral", str(CHART), "--namespace", "corral-system", *args],
        capture_output=True,
        text=True,
        check=check,
    )


def documents(text: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(text) if doc]


def test_helm_lint_strict_passes(helm: Path) -> None:
    result = subprocess.run(
        [str(helm), "lint", "--strict", str(CHART)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_chart_crds_are_the_repository_crds() -> None:
    chart_copies = {p.name: p.read_text() for p in (CHART / "files" / "crds").glob("*.yaml")}
    repository = {p.name: p.read_text() for p in (ROOT / "crds").glob("*.yaml")}
    assert repository, "crds/ is empty"
    assert chart_copies == repository, "charts/corral/files/crds is stale: run `make crds`"


def test_rendered_crds_equal_the_repository_crds_but_for_helm_metadata(helm: Path) -> None:
    rendered = {
        doc["metadata"]["name"]: doc
        for doc in documents(template(helm).stdout)
        if doc["kind"] == "CustomResourceDefinition"
    }
    for path in (ROOT / "crds").glob("*.yaml"):
        expected = yaml.safe_load(path.read_text())
        got = rendered.pop(expected["metadata"]["name"])
        assert got["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
        assert got["spec"] == expected["spec"]
    assert not rendered, f"chart renders CRDs that crds/ lacks: {sorted(rendered)}"


def test_plain_manifests_are_generated_from_the_chart_defaults(helm: Path) -> None:
    committed = (ROOT / "deploy" / "corral.yaml").read_text()
    assert deploymanifests.render(helm) == committed, "deploy/ is stale: run `make manifests`"


def test_cluster_wide_mode_binds_a_cluster_role_and_watches_all_namespaces(helm: Path) -> None:
    docs = documents(template(helm).stdout)
    kinds = {doc["kind"] for doc in docs}
    assert {"ClusterRole", "ClusterRoleBinding"} <= kinds
    roles = [doc["metadata"]["name"] for doc in docs if doc["kind"] == "Role"]
    assert roles == ["corral-leader-election"], "only the Lease of the leader election"
    deployment = next(doc for doc in docs if doc["kind"] == "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert "--all-namespaces" in container["args"]


def test_namespaced_mode_renders_a_role_per_watched_namespace(helm: Path) -> None:
    docs = documents(
        template(
            helm, "--set", "watch.allNamespaces=false", "--set", "watch.namespaces={team-a,team-b}"
        ).stdout
    )

    def namespaces(kind: str) -> list[str]:
        return sorted(
            doc["metadata"]["namespace"]
            for doc in docs
            if doc["kind"] == kind and not doc["metadata"]["name"].endswith("-leader-election")
        )

    assert namespaces("Role") == namespaces("RoleBinding") == ["team-a", "team-b"]
    assert not [doc for doc in docs if doc["kind"].startswith("Cluster")]
    deployment = next(doc for doc in docs if doc["kind"] == "Deployment")
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--namespace=team-a" in args
    assert "--namespace=team-b" in args


def test_two_operator_replicas_elect_a_leader_and_keep_one_pod_through_disruptions(
    helm: Path,
) -> None:
    docs = documents(template(helm).stdout)
    deployment = next(doc for doc in docs if doc["kind"] == "Deployment")
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["strategy"]["type"] == "RollingUpdate"
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert "--peering=corral-operator" in container["args"]
    env = {e["name"]: e for e in container["env"]}
    assert env["CORRAL_PEERING_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"] == (
        "metadata.namespace"
    )
    pdb = next(doc for doc in docs if doc["kind"] == "PodDisruptionBudget")
    assert pdb["spec"]["minAvailable"] == 1
    assert pdb["spec"]["selector"] == deployment["spec"]["selector"]
    role = next(doc for doc in docs if doc["metadata"]["name"] == "corral-leader-election")
    assert role["metadata"]["namespace"] == "corral-system"
    assert role["rules"] == [
        {
            "apiGroups": ["coordination.k8s.io"],
            "resources": ["leases"],
            "verbs": ["get", "create", "update"],
        }
    ]


def test_more_than_one_replica_without_an_election_is_refused(helm: Path) -> None:
    failed = template(helm, "--set", "operator.peering=", check=False)
    assert failed.returncode != 0
    assert "operator.replicas > 1 needs operator.peering" in failed.stderr


def test_operator_pod_is_restricted_recreated_and_probed_for_liveness_only(helm: Path) -> None:
    single = ("--set", "operator.peering=", "--set", "operator.replicas=1")
    deployment = next(
        doc for doc in documents(template(helm, *single).stdout) if doc["kind"] == "Deployment"
    )
    spec = deployment["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"]["type"] == "Recreate"
    pod = spec["template"]["spec"]
    container = pod["containers"][0]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
    }
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert "readinessProbe" not in container
    assert container["resources"]["requests"]
    assert container["resources"]["limits"]


def test_service_monitor_is_rendered_only_when_the_api_exists(helm: Path) -> None:
    enabled = ("--set", "metrics.serviceMonitor.enabled=true")
    without_api = documents(template(helm, *enabled).stdout)
    with_api = documents(
        template(helm, *enabled, "--api-versions", "monitoring.coreos.com/v1/ServiceMonitor").stdout
    )
    assert "ServiceMonitor" not in {doc["kind"] for doc in without_api}
    assert "ServiceMonitor" in {doc["kind"] for doc in with_api}


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (("--set", "operator.livenessPort=abc"), "/operator/livenessPort"),
        (("--set", "watch.allNamespaces=false"), "/watch/namespaces"),
        (("--set", "runtime.image.pullPolicy=Sometimes"), "/runtime/image/pullPolicy"),
        (("--set", "operator.logLevel=loud"), "/operator/logLevel"),
        (("--set", "operatr.logLevel=info"), "operatr"),
        (
            ("--set", "watch.namespaces={Bad_Name}", "--set", "watch.allNamespaces=false"),
            "/watch/namespaces/0",
        ),
    ],
)
def test_a_bad_value_is_refused_with_a_message_naming_it(
    helm: Path, args: tuple[str, ...], named: str
) -> None:
    result = template(helm, *args, check=False)
    assert result.returncode != 0
    assert named in result.stderr, result.stderr


def _leaf_paths(value: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    if isinstance(value, dict) and value:
        return [p for key, child in value.items() for p in _leaf_paths(child, (*prefix, key))]
    return [prefix]


def test_values_schema_describes_every_default_value() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    schema = json.loads((CHART / "values.schema.json").read_text())
    for path in _leaf_paths(values):
        node = schema
        for key in path:
            props = node.get("properties", {})
            if key not in props:
                # free-form maps (resources, nodeSelector, ...) describe their entries generically
                described = node.get("additionalProperties", False) is not False
                assert described, f"values.schema.json does not describe {'.'.join(path)}"
                break
            node = props[key]
        else:
            assert "description" in node or node.get("type") == "object", ".".join(path)


def _console(helm: Path, *args: str) -> dict[str, list[dict[str, Any]]]:
    """The console's objects by kind (only those labelled as the console's)."""
    found: dict[str, list[dict[str, Any]]] = {}
    for doc in documents(template(helm, "--set", "console.enabled=true", *args).stdout):
        labels = doc["metadata"].get("labels") or {}
        if labels.get("app.kubernetes.io/component") == "console":
            found.setdefault(doc["kind"], []).append(doc)
    return found


def _verbs(rules: list[dict[str, Any]]) -> dict[tuple[str, str], set[str]]:
    return {
        (group, resource): set(rule["verbs"])
        for rule in rules
        for group in rule["apiGroups"]
        for resource in rule["resources"]
    }


def test_the_console_is_off_by_default(helm: Path) -> None:
    docs = documents(template(helm).stdout)
    assert not [d for d in docs if "console" in d["metadata"]["name"]]


def test_the_in_cluster_console_is_read_only_by_default_and_behind_a_cluster_ip(
    helm: Path,
) -> None:
    console = _console(helm)
    (service,) = console["Service"]
    assert service["spec"]["type"] == "ClusterIP"
    assert service["spec"]["ports"] == [{"name": "http", "port": 8090, "targetPort": "http"}]
    (deployment,) = console["Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["args"][:3] == ["console", "--host=0.0.0.0", "--port=8090"]
    assert pod["serviceAccountName"] == "corral-console"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["readinessProbe"]["httpGet"]["path"] == "/healthz"
    (role,) = console["ClusterRole"]
    verbs = _verbs(role["rules"])
    writes = {"create", "update", "patch", "delete", "deletecollection"}
    assert all(not (v & writes) for v in verbs.values()), verbs
    assert not [r for _, r in verbs if r.endswith("/proxy")], "no proxy when read-only"
    for needed in [("corral.dev", "agents"), ("", "events"), ("apps", "deployments"), ("", "pods")]:
        assert {"get", "list", "watch"} <= verbs[needed], needed
    (binding,) = console["ClusterRoleBinding"]
    assert binding["subjects"][0]["name"] == "corral-console"


def test_console_rbac_edit_adds_the_writes_and_the_proxies_of_the_chat(helm: Path) -> None:
    (role,) = _console(helm, "--set", "console.rbac=edit")["ClusterRole"]
    verbs = _verbs(role["rules"])
    assert {"create", "patch"} <= verbs[("corral.dev", "personas")]
    assert {"create", "get"} <= verbs[("", "services/proxy")]
    assert "get" in verbs[("", "pods/proxy")]
    assert "delete" not in set().union(*verbs.values())


def test_a_namespaced_console_gets_a_role_per_watched_namespace_and_shows_them(
    helm: Path,
) -> None:
    console = _console(
        helm, "--set", "watch.allNamespaces=false", "--set", "watch.namespaces={team-a,team-b}"
    )
    assert "ClusterRole" not in console
    assert sorted(r["metadata"]["namespace"] for r in console["Role"]) == ["team-a", "team-b"]
    (deployment,) = console["Deployment"]
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[-2:] == ["--namespace=team-a", "--namespace=team-b"]


def test_a_bad_console_value_is_refused_naming_it(helm: Path) -> None:
    result = template(helm, "--set", "console.rbac=admin", check=False)
    assert result.returncode != 0
    assert "/console/rbac" in result.stderr, result.stderr


def test_the_console_grants_nothing_when_rbac_is_managed_elsewhere(helm: Path) -> None:
    console = _console(helm, "--set", "rbac.create=false")
    assert set(console) == {"ServiceAccount", "Deployment", "Service"}
