"""The operator, run with the Helm chart's own ServiceAccount token (not admin), reconciles an
Agent to Ready. Every verb the operator uses must be granted by the chart's Role, so a
missing one fails this test (with the operator's log in the failure message). The namespace
enforces the `restricted` Pod Security Standard, so Ready also proves the runtime pods are
admitted under it."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import serviceaccounts
from localcluster import handles

ROOT = Path(__file__).resolve().parents[3]
CHART = ROOT / "charts" / "corral"
EXAMPLES = [ROOT / "examples" / f for f in ("persona-support-tone.yaml", "tool-order-lookup.yaml")]
pytestmark = [pytest.mark.cluster, pytest.mark.e2e]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
def operator_as_chart_account(
    cluster: handles.Cluster, namespace: str, tmp_path: Path
) -> Iterator[Path]:
    """Install the chart in namespaced mode watching `namespace`, then run `corral operator`
    locally with its ServiceAccount's token. Yields the operator's log path."""
    # The CRDs as every test installs them (idempotent); the chart's own CRD path is
    # tested in tests/integration/chart.
    cluster.kubectl(
        "apply", "--server-side", "--field-manager=corral-crds", "-f", str(ROOT / "crds")
    )
    cluster.kubectl("wait", "--for=condition=Established", "crd", "--all", "--timeout=60s")
    cluster.helm(
        "install", "corral", str(CHART), "-n", namespace,
        "--set", "watch.allNamespaces=false", "--set", f"watch.namespaces={{{namespace}}}",
        "--set", "crds.install=false",
    )  # fmt: skip
    kubeconfig = serviceaccounts.kubeconfig(cluster, namespace, "corral", tmp_path / "sa.config")
    log_path = tmp_path / "operator.log"
    with open(log_path, "wb") as log:
        operator = subprocess.Popen(
            [str(Path(sys.executable).parent / "corral"), "operator", "-n", namespace,
             "--peering=corral-operator",
             f"--liveness-port={free_port()}", f"--metrics-port={free_port()}"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env={**os.environ, "KUBECONFIG": str(kubeconfig),
                 "CORRAL_PEERING_NAMESPACE": namespace},
        )  # fmt: skip
    try:
        yield log_path
    finally:
        operator.terminate()
        try:
            operator.wait(timeout=20)
        except subprocess.TimeoutExpired:
            operator.kill()
            operator.wait()
        cluster.helm("uninstall", "corral", "-n", namespace, check=False)


def test_operator_with_the_charts_service_account_reconciles_an_agent_to_ready(
    cluster: handles.Cluster, namespace: str, operator_as_chart_account: Path
) -> None:
    cluster.kubectl(
        "label", "namespace", namespace, "pod-security.kubernetes.io/enforce=restricted"
    )
    for example in EXAMPLES:
        cluster.kubectl("apply", "--server-side", "-n", namespace, "-f", str(example))
    agent = {
        "apiVersion": "corral.dev/v1alpha1",
        "kind": "Agent",
        "metadata": {"name": "support"},
        "spec": {
            "personaRef": {"name": "support-tone"},
            "model": {"provider": "openai", "name": "gpt-4o-mini",
                      "apiKeySecretRef": {"name": "openai", "key": "api-key"}},
            "tools": [{"name": "order-lookup"}],
            "replicas": 2,
        },
    }  # fmt: skip
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "openai"},
        "stringData": {"api-key": "sk-test-not-a-real-key"},
    }
    scaled = {
        "apiVersion": "corral.dev/v1alpha1",
        "kind": "Agent",
        "metadata": {"name": "scaled"},
        "spec": {
            "model": {"provider": "openai", "name": "gpt-4o-mini"},
            "autoscaling": {"minReplicas": 1, "maxReplicas": 3},
        },
    }
    for manifest in (secret, agent, scaled):
        cluster.kubectl("apply", "--server-side", "-n", namespace, "-f", "-",
                        input=json.dumps(manifest))  # fmt: skip
    waited = cluster.kubectl(
        "wait", "--for=condition=Ready", "agent/support", "-n", namespace, "--timeout=120s",
        check=False,
    )  # fmt: skip
    log = operator_as_chart_account.read_text(errors="replace")
    assert waited.returncode == 0, f"Agent not Ready:\n{waited.stderr}\noperator log:\n{log}"
    scaled_ready = cluster.kubectl(
        "wait", "--for=condition=Ready", "agent/scaled", "-n", namespace, "--timeout=120s",
        check=False,
    )  # fmt: skip
    log = operator_as_chart_account.read_text(errors="replace")
    assert scaled_ready.returncode == 0, f"autoscaled Agent not Ready:\n{log}"
    assert "leading: holding Lease" in log, "the chart's Role lets the operator hold its Lease"
    cluster.kubectl("get", "hpa", "scaled", "-n", namespace)
    assert "forbidden" not in log.lower(), f"the chart's RBAC lacks a verb:\n{log}"
    children = cluster.kubectl(
        "get", "configmap,deployment,service,poddisruptionbudget", "-n", namespace,
        "-l", "corral.dev/agent=support", "-o", "name",
    ).stdout.split()  # fmt: skip
    pods = cluster.kubectl(
        "get", "pods", "-n", namespace, "-l", "corral.dev/agent=support", "-o", "name"
    ).stdout.split()  # fmt: skip
    assert len(pods) == 2, "the restricted namespace did not admit both runtime pods"
    assert sorted(c.split("/")[0] for c in children) == [
        "configmap", "deployment.apps", "poddisruptionbudget.policy", "service",
    ]  # fmt: skip
