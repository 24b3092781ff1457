"""The chart's in-cluster console (`console.enabled=true`) on a real pod: reached with the
README's `kubectl port-forward`, it serves the registry of the namespaces the operator
watches, and with the default `console.rbac: read-only` a write through it is refused by the
API server with its 403 message, and nothing changes; with `console.rbac: edit` its test chat
answers as the console's own ServiceAccount (the in-cluster credentials)."""

from __future__ import annotations

import html
import json
import re
import subprocess
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from chatting_e2e import ANSWER, TOOL
from pods_e2e import API, Release

from localcluster import handles, nodeconfigs, probes

pytestmark = [pytest.mark.cluster, pytest.mark.e2e]
README = (Path(__file__).resolve().parents[3] / "README.md").read_text()
CHART = Path(__file__).resolve().parents[3] / "charts" / "corral"
FORWARDING = re.compile(r"Forwarding from 127\.0\.0\.1:(\d+) -> 8090")


@pytest.fixture(scope="module")
def console_release(cluster: handles.Cluster, release: Release) -> Iterator[str]:
    """The release upgraded with the console on (on the real node); back off afterwards."""
    values = {
        "console": {
            "enabled": True,
            "nodeSelector": dict([nodeconfigs.LABEL]),
            "tolerations": [nodeconfigs.TOLERATION],
        }
    }
    cluster.helm(
        "upgrade", release.name, str(CHART), "-n", release.namespace, "--reuse-values",
        "--wait", "--timeout=180s", "--values", "-", input=json.dumps(values),
    )  # fmt: skip
    name = f"{release.name}-console"
    cluster.kubectl(
        "rollout", "status", f"deployment/{name}", "-n", release.namespace, "--timeout=180s"
    )
    yield name
    cluster.helm(
        "upgrade", release.name, str(CHART), "-n", release.namespace, "--reuse-values",
        "--set", "console.enabled=false", "--wait", "--timeout=180s", check=False,
    )  # fmt: skip


@pytest.fixture(scope="module")
def console_url(cluster: handles.Cluster, release: Release, console_release: str) -> Iterator[str]:
    """The README's `kubectl port-forward` to the console's Service, for this release (any free
    local port here: other sessions may hold 8090)."""
    assert "kubectl port-forward -n corral-system svc/corral-console 8090:8090" in README
    process = subprocess.Popen(
        [str(cluster.kubectl_path), "port-forward", f"svc/{console_release}", ":8090",
         "-n", release.namespace],
        env=cluster.env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        found = FORWARDING.search(first)
        assert found, f"kubectl port-forward said: {first}"
        url = f"http://127.0.0.1:{found.group(1)}"
        probes.wait_for("the console answering", lambda: probes.healthy(f"{url}/healthz"), 60)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_the_in_cluster_console_serves_the_registry_on_a_real_pod(
    cluster: handles.Cluster, release: Release, console_release: str, console_url: str, tooled: str
) -> None:
    (pod,) = json.loads(
        cluster.kubectl(
            "get", "pods", "-n", release.namespace, "-o", "json",
            "-l", "app.kubernetes.io/component=console",
        ).stdout
    )["items"]  # fmt: skip
    assert pod["spec"]["nodeName"] == nodeconfigs.NAME
    assert pod["spec"]["serviceAccountName"] == console_release
    with urllib.request.urlopen(f"{console_url}/", timeout=30) as response:
        page = response.read().decode()
    assert tooled in page
    assert release.watched in page


def test_the_read_only_console_cannot_write_the_api_server_says_why(
    cluster: handles.Cluster, release: Release, console_release: str, console_url: str
) -> None:
    persona = {
        "apiVersion": API,
        "kind": "Persona",
        "metadata": {"name": "console-write", "namespace": release.watched},
        "spec": {"systemPrompt": "Written through the console."},
    }
    body = urllib.parse.urlencode({"manifest": json.dumps(persona)}).encode()
    request = urllib.request.Request(f"{console_url}/author/personas/apply", data=body)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            status, text = response.status, response.read().decode()
    except urllib.error.HTTPError as refused:
        status, text = refused.code, refused.read().decode()
    shown = html.unescape(text)
    assert status == 422, shown
    account = f"system:serviceaccount:{release.namespace}:{console_release}"
    assert f'User "{account}" cannot patch resource "personas"' in shown
    missing = cluster.kubectl("get", "persona", "console-write", "-n", release.watched, check=False)
    assert missing.returncode != 0
    assert "NotFound" in missing.stderr


def test_with_console_rbac_edit_the_in_cluster_console_chats_as_its_service_account(
    cluster: handles.Cluster,
    release: Release,
    console_release: str,
    console_url: str,
    tooled: str,
) -> None:
    """RBAC is read on every request, so the upgrade needs no new pod: the same console now
    reaches the Agent through the service proxy with its in-cluster token."""
    cluster.helm(
        "upgrade", release.name, str(CHART), "-n", release.namespace, "--reuse-values",
        "--set", "console.rbac=edit", "--wait", "--timeout=180s",
    )  # fmt: skip
    body = json.dumps({"message": "Status?", "history": []}).encode()
    request = urllib.request.Request(
        f"{console_url}/agents/{release.watched}/{tooled}/chat/stream",
        data=body,
        headers={"content-type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=120) as response:
        events = [
            json.loads(line[len("data: ") :])
            for line in response.read().decode().splitlines()
            if line.startswith("data: ")
        ]
    kinds = [e["type"] for e in events]
    assert "error" not in kinds, events
    assert "".join(e["text"] for e in events if e["type"] == "content") == ANSWER
    (calls,) = [e["calls"] for e in events if e["type"] == "tool_calls"]
    assert [(c["name"], c["outcome"]) for c in calls] == [(TOOL, "ok")]
    assert [e["model"] for e in events if e["type"] == "answered"] == ["scripted-model"]
    assert kinds[-2:] == ["usage", "done"]
