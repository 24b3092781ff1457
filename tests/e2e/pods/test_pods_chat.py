"""An Agent as real pods: the image runs them with the restricted security context, Ready=True
follows the pods' own readiness, the official openai SDK chats through the Agent's Service and
llama.cpp answers, and the README's `kubectl port-forward svc/support 8080:8080` works as
written."""

from __future__ import annotations

import os
import signal
import subprocess
import urllib.request
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from openai import OpenAI
from pods_e2e import (
    PodModel,
    Release,
    agent,
    apply,
    condition,
    exec_in,
    get,
    pods,
    service_url,
    wait_ready,
)

from localcluster import handles, images, nodeconfigs, probes

pytestmark = [pytest.mark.cluster, pytest.mark.e2e]
README = (Path(__file__).resolve().parents[3] / "README.md").read_text()
PORT_FORWARD = "kubectl port-forward svc/support 8080:8080"
RUNTIME_UID = 65532
QUESTION = [{"role": "user", "content": "Hello! In one sentence, what can you help me with?"}]


@pytest.fixture(scope="module")
def support(
    cluster: handles.Cluster, release: Release, llama: PodModel, image: images.Image
) -> str:
    """The README's Agent name, served by llama.cpp (as the demo does)."""
    apply(cluster, release.watched, agent("support", llama.base_url))
    wait_ready(cluster, release.watched, "support")
    return "support"


def test_agent_pods_run_the_image_restricted_and_ready_follows_the_pods(
    cluster: handles.Cluster, release: Release, support: str, image: images.Image
) -> None:
    namespace = release.watched
    (pod,) = pods(cluster, namespace, support)
    name = pod["metadata"]["name"]
    assert pod["spec"]["nodeName"] == nodeconfigs.NAME
    (container,) = pod["spec"]["containers"]
    assert container["image"] == image.reference
    context = container["securityContext"]
    assert context["readOnlyRootFilesystem"] is True
    assert context["allowPrivilegeEscalation"] is False
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
    # What the process really is, inside the running container.
    assert exec_in(cluster, namespace, name, "id", "-u").strip() == str(RUNTIME_UID)
    write = cluster.kubectl("exec", "-n", namespace, name, "--", "touch", "/x", check=False)
    assert write.returncode != 0
    assert "Read-only file system" in write.stderr
    # Ready on the Agent came no earlier than the pod's own (both recorded by the API server).
    pod_ready = condition(pod, "Ready")
    agent_ready = condition(get(cluster, namespace, "agent", support), "Ready")
    assert pod_ready["status"] == agent_ready["status"] == "True"
    assert _time(agent_ready["lastTransitionTime"]) >= _time(pod_ready["lastTransitionTime"])
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        assert container[probe]["httpGet"]["path"] in ("/healthz", "/readyz"), probe


def test_the_openai_sdk_chats_through_the_agents_service_and_llama_answers(
    cluster: handles.Cluster, release: Release, support: str
) -> None:
    # Gemma 3 270M is a tiny base model: the answer's shape is checked, never its content.
    client = OpenAI(base_url=service_url(cluster, release.watched, support), api_key="unused")
    answer = client.chat.completions.create(model=support, messages=QUESTION)
    assert answer.model == support
    assert isinstance(answer.choices[0].message.content, str)
    assert answer.choices[0].finish_reason in ("stop", "length")
    assert answer.usage is not None
    assert answer.usage.prompt_tokens > 0  # counted by llama.cpp's tokenizer
    stream = client.chat.completions.create(
        model=support, messages=QUESTION, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.prompt_tokens > 0


@pytest.fixture
def readme_shell(cluster: handles.Cluster, release: Release, tmp_path: Path) -> dict[str, str]:
    """A reader's shell: kubectl on PATH, a kubeconfig whose namespace holds the Agent."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "kubectl").symlink_to(cluster.kubectl_path)
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(cluster.kubeconfig.read_text())
    env = {**cluster.env(), "KUBECONFIG": str(kubeconfig)}
    env["PATH"] = f"{bin_dir}:{env['PATH']}"
    subprocess.run(
        ["kubectl", "config", "set-context", "--current", f"--namespace={release.watched}"],
        env=env, check=True, capture_output=True,
    )  # fmt: skip
    return env


@pytest.fixture
def port_forward(readme_shell: dict[str, str], support: str) -> Iterator[subprocess.Popen[bytes]]:
    assert PORT_FORWARD in README
    process = subprocess.Popen(
        ["bash", "-c", f"exec {PORT_FORWARD}"], env=readme_shell, start_new_session=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        probes.wait_for(
            "kubectl port-forward on 127.0.0.1:8080",
            lambda: process.poll() is None and probes.healthy("http://127.0.0.1:8080/readyz"),
            timeout=60,
            detail=lambda: process.stdout.read().decode() if process.poll() is not None else "",
        )
        yield process
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)


def test_the_readmes_port_forward_reaches_the_agent(
    port_forward: subprocess.Popen[bytes], support: str
) -> None:
    with urllib.request.urlopen("http://127.0.0.1:8080/v1/models", timeout=10) as response:
        assert support.encode() in response.read()
    client = OpenAI(base_url="http://127.0.0.1:8080/v1", api_key="unused-without-auth")
    stream = client.chat.completions.create(
        model=support, messages=QUESTION, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.prompt_tokens > 0


def _time(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))
