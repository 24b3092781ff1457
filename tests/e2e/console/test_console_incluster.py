"""In a pod, `corral console` uses the pod's ServiceAccount, as kubectl would.

The pod is simulated honestly where it matters: no kubeconfig anywhere, KUBERNETES_SERVICE_HOST
and _PORT pointing at the real API server, and a ServiceAccount directory holding a real token
(TokenRequest), the cluster's CA and the namespace. The ServiceAccount may read Personas in its
own namespace only, so the registry shows them and says it was narrowed.
"""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest
import yaml
from console_e2e import ConsoleProcess

from e2e.operator import operator_manifests as manifests
from localcluster import handles

pytestmark = pytest.mark.cluster


def test_in_a_pod_the_console_acts_as_the_pods_serviceaccount(
    cluster: handles.Cluster, console_crds: None, namespace: str, tmp_path: Path
) -> None:
    cluster.kubectl(
        "apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(manifests.persona("tone"))
    )
    cluster.kubectl("create", "serviceaccount", "console", "-n", namespace)
    cluster.kubectl("create", "role", "console", "-n", namespace, "--verb=get,list,watch",
                    "--resource=personas.corral.dev,agents.corral.dev,tools.corral.dev,"
                    "mcpservers.corral.dev")  # fmt: skip
    cluster.kubectl("create", "rolebinding", "console", "-n", namespace, "--role=console",
                    f"--serviceaccount={namespace}:console")  # fmt: skip
    account = tmp_path / "serviceaccount"
    account.mkdir()
    token = cluster.kubectl("create", "token", "console", "-n", namespace).stdout.strip()
    (account / "token").write_text(token)
    (account / "ca.crt").write_bytes((cluster.state_dir / "pki" / "ca.crt").read_bytes())
    (account / "namespace").write_text(namespace)
    host, port = cluster.server.removeprefix("https://").rsplit(":", 1)
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"} | {
        "HOME": str(home),
        "KUBERNETES_SERVICE_HOST": host,
        "KUBERNETES_SERVICE_PORT": port,
        "CORRAL_CONSOLE_SERVICEACCOUNT_DIR": str(account),
    }
    console = ConsoleProcess(None, tmp_path / "console.log", env=env).start()
    try:
        page = httpx.get(console.url + "/", timeout=30)
    finally:
        console.stop()

    assert page.status_code == 200, page.text
    assert f'id="row-persona-{namespace}-tone"' in page.text
    assert "across all namespaces" in page.text
    assert f"namespaces you may read: {namespace}." in page.text
    assert "corral console: http://127.0.0.1" in (tmp_path / "console.log").read_text()
    assert f"(namespace {namespace})" in (tmp_path / "console.log").read_text()
