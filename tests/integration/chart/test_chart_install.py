"""The Helm chart against the local control plane: install, upgrade with changed values,
uninstall (which keeps the CRDs). Helm 4's --wait reads readiness through kstatus, and the
operator pod becomes Ready on the kwok node, so --wait proves the rollout too."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from localcluster import handles

CHART = Path(__file__).resolve().parents[3] / "charts" / "corral"
pytestmark = pytest.mark.cluster


def operator_container(cluster: handles.Cluster, namespace: str, release: str) -> dict[str, Any]:
    deployment = json.loads(
        cluster.kubectl("get", "deployment", release, "-n", namespace, "-o", "json").stdout
    )
    containers: list[dict[str, Any]] = deployment["spec"]["template"]["spec"]["containers"]
    return containers[0]


def env_of(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e.get("value", "") for e in container.get("env", [])}


def test_helm_install_upgrade_and_uninstall_keeps_the_crds(
    cluster: handles.Cluster, namespace: str
) -> None:
    release = "corral"
    scope = ("--set", "watch.allNamespaces=false", "--set", f"watch.namespaces={{{namespace}}}")
    # --take-ownership: the CRDs may already exist, applied by other tests with kubectl.
    cluster.helm(
        "install", release, str(CHART), "-n", namespace, *scope,
        "--take-ownership", "--wait", "--timeout", "120s",
    )  # fmt: skip
    container = operator_container(cluster, namespace, release)
    assert f"--namespace={namespace}" in container["args"]
    assert env_of(container)["CORRAL_IMAGE"] == "ghcr.io/corral-dev/corral:0.1.0"
    role = cluster.kubectl("get", "role", release, "-n", namespace, "-o", "json")
    assert json.loads(role.stdout)["rules"], "the Role has no rules"

    cluster.helm(
        "upgrade", release, str(CHART), "-n", namespace, *scope,
        "--set", "runtime.image.tag=0.2.0", "--set", "operator.logLevel=debug",
        "--take-ownership", "--wait", "--timeout", "120s",
    )  # fmt: skip
    container = operator_container(cluster, namespace, release)
    assert env_of(container)["CORRAL_IMAGE"] == "ghcr.io/corral-dev/corral:0.2.0"
    assert "--verbose" in container["args"]

    cluster.helm("uninstall", release, "-n", namespace, "--wait", "--timeout", "120s")
    gone = cluster.kubectl("get", "deployment,role,serviceaccount", "-n", namespace, "-o", "name")
    assert release not in gone.stdout
    for plural in ("agents", "personas", "tools"):
        crd = cluster.kubectl("get", "crd", f"{plural}.corral.dev", "-o", "json")
        annotations = json.loads(crd.stdout)["metadata"]["annotations"]
        assert annotations["helm.sh/resource-policy"] == "keep"


def test_helm_install_refuses_a_bad_value_before_touching_the_cluster(
    cluster: handles.Cluster, namespace: str
) -> None:
    result = cluster.helm(
        "install", "corral", str(CHART), "-n", namespace,
        "--set", "runtime.drainSeconds=-1", check=False,
    )  # fmt: skip
    assert result.returncode != 0
    assert "/runtime/drainSeconds" in result.stderr
    assert "corral" not in cluster.helm("list", "-n", namespace, "-q").stdout
