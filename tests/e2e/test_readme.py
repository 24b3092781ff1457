"""The README's commands, run the way a reader runs them, on a fresh control plane.

A reader's cluster has no Corral yet, so this module starts its own control plane (its own
state dir and ports) instead of the shared one, where other tests have installed the CRDs.
The quickstart block runs verbatim in bash. Two substitutions are forced by the sandbox and
stated where they happen: kwok pods run no containers, so the operator runs as a local process
and the Agent is served by `corral runtime` from its rendered ConfigMap instead of through
`kubectl port-forward`; and there is no route to api.openai.com, so that runtime's model URL
points at a scripted fake of the OpenAI API. `make demo` and `make test` are run by
tests/e2e/test_demo.py and by CI itself.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from fakes import scripts
from fakes.openai_server import FakeOpenAI
from localcluster import cluster, handles, settings

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
VENV_BIN = Path(sys.executable).parent
pytestmark = [pytest.mark.cluster, pytest.mark.e2e]

# Commands in the README's shell blocks that this module does not run, and what runs them.
RUN_ELSEWHERE = {
    "make demo": "tests/e2e/test_demo.py runs hack/demo.py, which is all `make demo` does",
    "make test": "CI runs it (.ci/run)",
    "docker build -t registry.example.com/corral:0.1.0 .": "no Docker here: tests/e2e/pods builds"
    " the same Dockerfile with buildah (hack/localcluster/images.py) and runs it as pods",
    "docker push registry.example.com/corral:0.1.0": "no registry is reachable here: the image"
    " is imported into the real node's containerd instead",
    "kubectl port-forward svc/support 8080:8080": "tests/e2e/pods/test_pods_chat.py runs it"
    " against an Agent's real pods (this module's cluster has no real node)",
    "corral chat support -n shop": "tests/e2e/pods/test_pods_chat_terminal.py runs `corral chat`"
    " on a pseudo-terminal against an Agent's real pods",
    'corral chat support -n shop -m "Where is order 1042?"': "tests/e2e/pods/"
    "test_pods_chat_terminal.py runs `corral chat -m` against an Agent's real pods",
    'echo "Where is order 1042?" | corral chat support -n shop': "tests/e2e/pods/"
    "test_pods_chat_terminal.py pipes a question into `corral chat` against real pods",
    (
        "helm upgrade corral charts/corral -n corral-system --reuse-values"
        " --set console.enabled=true"
    ): "tests/e2e/pods/test_pods_console_chart.py upgrades its release the same way (the"
    " console needs the real node's pods)",
    "kubectl port-forward -n corral-system svc/corral-console 8090:8090": "tests/e2e/pods/"
    "test_pods_console_chart.py forwards to its release's console Service the same way",
    "corral console": "tests/e2e/console runs `corral console` as a process (console_e2e.py)"
    " and drives it in headless Chromium",
    "corral console --context staging -n team-a --port 8091": "tests/unit/console/"
    "test_console_kube.py chooses a context; tests/e2e/console/test_console_registry.py starts"
    " the console with -n for a user who may not list all namespaces",
}


def shell_blocks(heading: str) -> list[str]:
    """The ```sh blocks of the README section that starts with `heading`."""
    start = README.index(heading)
    end = README.find("\n## ", start + len(heading))
    section = README[start : end if end != -1 else None]
    return re.findall(r"```sh\n(.*?)```", section, flags=re.S)


def python_blocks(heading: str) -> list[str]:
    start = README.index(heading)
    end = README.find("\n## ", start + len(heading))
    return re.findall(r"```python\n(.*?)```", README[start:end], flags=re.S)


def commands(block: str) -> list[str]:
    """Command lines of a shell block: no comments, no heredoc bodies, no continuations."""
    found, heredoc = [], None
    for line in block.splitlines():
        if heredoc:
            heredoc = None if line.strip() == heredoc else heredoc
            continue
        text = line.split("  #")[0].strip()
        if not text or text.startswith("#") or line.startswith((" ", "\t")):
            continue
        found.append(text.rstrip("\\").strip())
        marker = re.search(r"<<'?(\w+)'?", text)
        heredoc = marker.group(1) if marker else None
    return found


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def fresh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[handles.Cluster]:
    """A control plane of its own: nothing of Corral installed, like a reader's cluster."""
    shared = settings.Settings.from_env()
    config = dataclasses.replace(
        shared,
        state_dir=tmp_path_factory.mktemp("readme-cluster"),
        etcd_port=free_port(),
        etcd_peer_port=free_port(),
        apiserver_port=free_port(),
        controller_manager_port=free_port(),
        scheduler_port=free_port(),
        kwok_port=free_port(),
        # One real node per machine, and the shared cluster has it: this one is kwok only.
        node=False,
    )
    try:
        yield cluster.up(config)
    finally:
        cluster.down(config)


@pytest.fixture(scope="module")
def shell_env(fresh: handles.Cluster, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """What a reader's shell has: kubectl, helm and corral on PATH, KUBECONFIG set."""
    bin_dir = tmp_path_factory.mktemp("bin")
    for name, target in {
        "kubectl": fresh.kubectl_path,
        "helm": fresh.helm_path,
        "corral": VENV_BIN / "corral",
    }.items():
        (bin_dir / name).symlink_to(target)
    env = fresh.env()
    env["PATH"] = f"{bin_dir}:{env['PATH']}"
    env["OPENAI_API_KEY"] = "sk-readme-test-not-a-real-key"
    return env


@pytest.fixture(scope="module")
def operator(fresh: handles.Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The operator as a local process, started before the CRDs exist (as GitOps may do)."""
    log_path = tmp_path_factory.mktemp("operator") / "operator.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, str(VENV_BIN / "corral"), "operator", "-A",
             f"--liveness-port={free_port()}", f"--metrics-port={free_port()}"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=fresh.env(),
        )  # fmt: skip
    yield log_path
    process.terminate()
    process.wait(timeout=30)


def bash(script: str, env: dict[str, str], timeout: float = 300) -> str:
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip
    assert result.returncode == 0, f"{script}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    return result.stdout


def test_plain_manifests_install_the_operator(
    fresh: handles.Cluster, shell_env: dict[str, str]
) -> None:
    bash("kubectl apply --server-side -k deploy/", shell_env)
    bash("kubectl -n corral-system wait --for=condition=Available deploy/corral", shell_env)
    # Leave the cluster as a reader's for the quickstart, which installs the same with helm.
    bash("kubectl delete -k deploy/ --wait", shell_env)
    bash("kubectl wait --for=delete namespace/corral-system --timeout=120s || true", shell_env)


def test_the_quickstart_runs_verbatim_and_the_agent_becomes_ready(
    fresh: handles.Cluster, shell_env: dict[str, str], operator: Path
) -> None:
    quickstart = shell_blocks("## Quickstart on any cluster")[0]
    try:
        out = bash(quickstart, shell_env)
    except AssertionError as err:
        raise AssertionError(f"{err}\noperator log:\n{operator.read_text()[-3000:]}") from None
    assert re.search(r"^support\s+True\s+Available\s+gpt-4o-mini", out, flags=re.M), out
    wide = bash(shell_blocks("### Status")[0], shell_env)
    assert "http://support.default.svc:8080/v1" in wide
    rendered = bash("corral render -f examples/", shell_env)
    assert "kind: Deployment" in rendered


def test_the_python_and_curl_snippets_chat_with_the_agent(
    fresh: handles.Cluster, tmp_path: Path
) -> None:
    configmap = json.loads(
        fresh.kubectl("get", "configmap", "support-runtime", "-o", "json").stdout
    )
    config = json.loads(configmap["data"]["runtime.json"])
    env = {**os.environ, config["models"][0]["apiKeyEnv"]: "sk-readme-test-not-a-real-key"}
    with FakeOpenAI() as upstream:
        upstream.default = scripts.text("Order 1042 ships tomorrow.")
        # The sandbox has no route to api.openai.com: point the rendered model at the fake.
        config["models"][0]["baseURL"] = upstream.base_url
        path = tmp_path / "runtime.json"
        path.write_text(json.dumps(config))
        runtime = subprocess.Popen(
            [sys.executable, str(VENV_BIN / "corral"), "runtime", "--config", str(path),
             "--host", "127.0.0.1", "--port", "8080"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 60
            while subprocess.run(
                ["curl", "-sf", "http://127.0.0.1:8080/readyz"], capture_output=True
            ).returncode:
                assert time.monotonic() < deadline, "the runtime did not become ready"
                assert runtime.poll() is None, "the runtime exited"
                time.sleep(0.2)
            snippet = python_blocks("## Quickstart on any cluster")[0]
            streamed = subprocess.run(
                [sys.executable, "-c", snippet], capture_output=True, text=True, timeout=60
            )
            assert streamed.returncode == 0, streamed.stderr
            assert streamed.stdout == "Order 1042 ships tomorrow."
            curl = bash(shell_blocks("## Quickstart on any cluster")[2], os.environ.copy())
            answer = json.loads(curl)
            assert answer["model"] == "support"
            assert answer["choices"][0]["message"]["content"] == "Order 1042 ships tomorrow."
        finally:
            runtime.terminate()
            runtime.wait(timeout=30)


def test_every_command_in_the_readme_is_run_by_a_test() -> None:
    run_here = {
        line
        for heading in ("## Quickstart on any cluster", "### Status")
        for block in shell_blocks(heading)
        for line in commands(block)
    } - set(RUN_ELSEWHERE)
    everything = {
        line for block in re.findall(r"```sh\n(.*?)```", README, re.S) for line in commands(block)
    }
    unaccounted = everything - run_here - set(RUN_ELSEWHERE)
    assert not unaccounted, f"README commands no test runs: {sorted(unaccounted)}"
    assert "helm install corral charts/corral -n corral-system --create-namespace --wait" in (
        run_here
    )
