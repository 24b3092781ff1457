"""The Agent page's metrics snapshot, read from a real `corral runtime` through the API
server's pods proxy.

kwok's pods serve nothing, so this test gives the API server a pod it can reach: a Node no one
manages, a pod bound to it whose status (written as a kubelet would) says it runs at this
host's own address, and on that address and the pod's `http` port a real `corral runtime` in
front of the scripted OpenAI fake. The Agent owns a Deployment whose selector matches the pod
(without a pod-template-hash, so no ReplicaSet adopts it). Requests go to the runtime with the
official `openai` SDK; the console must show what the runtime counted.
"""

from __future__ import annotations

import json
import subprocess
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
import yaml
from console_e2e import CORRAL, ConsoleProcess
from playwright.sync_api import Page, expect

from e2e.operator import operator_manifests as manifests
from e2e.operator.operator_e2e import free_port, wait_for
from fakes import scripts
from fakes.openai_server import FakeOpenAI
from localcluster import handles, node
from runtime.runtime_harness import agent_config

pytestmark = pytest.mark.cluster
AGENT = "metered"


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[tuple[str, int]]:
    """`corral runtime` on this host's own address (reachable by the API server as a pod IP)."""
    address, port = node.host_address(), free_port()
    with FakeOpenAI(scripts.text("Your order ships today.", usage=(12, 5))) as upstream:
        config = tmp_path / "runtime.json"
        config.write_text(agent_config(upstream.base_url, agent=AGENT).to_json())
        log = tmp_path / "runtime.log"
        with log.open("wb") as sink:
            process = subprocess.Popen(
                [str(CORRAL), "runtime", "--config", str(config), "--host", address,
                 "--port", str(port)],
                stdout=sink, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            )  # fmt: skip
        try:
            wait_for(
                "the runtime's /readyz",
                lambda: _ready(f"http://{address}:{port}/readyz"),
                30,
                lambda: log.read_text(errors="replace"),
            )
            yield address, port
        finally:
            process.terminate()
            process.wait(timeout=30)


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return int(response.status) == 200
    except OSError:
        return False


@pytest.fixture
def reachable_pod(
    cluster: handles.Cluster, namespace: str, console_crds: None, runtime: tuple[str, int]
) -> Iterator[str]:
    """The Agent, its Deployment and a Running pod at the runtime's address; the pod's name."""
    address, port = runtime
    node_name = f"console-metrics-{uuid.uuid4().hex[:6]}"
    cluster.kubectl("create", "-f", "-", input=json.dumps(
        {"apiVersion": "v1", "kind": "Node", "metadata": {"name": node_name}}
    ))  # fmt: skip
    try:
        agent = manifests.agent(AGENT, replicas=1)
        cluster.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(agent))
        uid = cluster.kubectl(
            "get", "-n", namespace, "agent", AGENT, "-o", "jsonpath={.metadata.uid}"
        ).stdout
        labels = {"app": AGENT}
        container = {
            "name": "runtime",
            "image": "registry.test/corral:e2e",
            "ports": [{"name": "http", "containerPort": port}],
        }
        deployment: dict[str, Any] = {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {
                "name": AGENT,
                "ownerReferences": [
                    {"apiVersion": manifests.API, "kind": "Agent", "name": AGENT, "uid": uid,
                     "controller": True}
                ],
            },
            "spec": {
                "replicas": 0,
                "selector": {"matchLabels": labels},
                "template": {"metadata": {"labels": labels}, "spec": {"containers": [container]}},
            },
        }  # fmt: skip
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": f"{AGENT}-0", "labels": labels},
            "spec": {"nodeName": node_name, "containers": [container]},
        }
        cluster.kubectl(
            "apply", "-n", namespace, "-f", "-", input=yaml.safe_dump_all([deployment, pod])
        )
        status = {
            "phase": "Running",
            "podIP": address,
            "podIPs": [{"ip": address}],
            "conditions": [{"type": "Ready", "status": "True"}],
            "containerStatuses": [
                {"name": "runtime", "ready": True, "restartCount": 0, "image": container["image"],
                 "imageID": "", "started": True, "state": {"running": {}}}
            ],
        }  # fmt: skip
        cluster.kubectl(
            "patch", "-n", namespace, "pod", f"{AGENT}-0", "--subresource=status",
            "--type=merge", "-p", json.dumps({"status": status}),
        )  # fmt: skip
        yield f"{AGENT}-0"
    finally:
        cluster.kubectl("delete", "node", node_name, "--wait=false", "--ignore-not-found")


def test_the_agent_page_shows_requests_errors_tokens_and_p95_read_through_the_pods_proxy(
    runtime: tuple[str, int],
    reachable_pod: str,
    namespace: str,
    console: ConsoleProcess,
    page: Page,
) -> None:
    address, port = runtime
    client = openai.OpenAI(base_url=f"http://{address}:{port}/v1", api_key="unused", max_retries=0)
    for _ in range(3):
        client.chat.completions.create(
            model=AGENT, messages=[{"role": "user", "content": "Where is order 1042?"}]
        )
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(
            model="another-agent", messages=[{"role": "user", "content": "Hi"}]
        )

    page.goto(f"{console.url}/agents/{namespace}/{AGENT}")

    values = page.locator("#metrics-values")
    expect(values).to_be_visible()
    metric = {
        label: values.locator(".metric", has_text=label).locator(".value")
        for label in ("chat requests", "errors (5xx)", "refused (4xx)", "tokens", "p95 latency")
    }
    expect(metric["chat requests"]).to_have_text("4")
    expect(metric["errors (5xx)"]).to_have_text("0")
    expect(metric["refused (4xx)"]).to_have_text("1")
    expect(metric["tokens"]).to_have_text("36 / 15")
    expect(metric["p95 latency"]).to_contain_text("ms")
    expect(page.locator("#metrics")).to_contain_text("summed over 1 pod(s)")
    expect(page.locator("#pods")).to_contain_text(reachable_pod)
