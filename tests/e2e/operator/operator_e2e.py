"""The operator as a real process against the local control plane, and ways to watch it.

Does I/O: spawns `corral operator` (stdout/stderr to a log file), reads the API server with the
admin client from hack/localcluster, applies manifests with the pinned kubectl, and scrapes
the operator's /metrics. Waits are bounded and fail with what was last seen and the end of the
operator's log, never with a bare timeout.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import yaml
from prometheus_client.parser import text_string_to_metric_families

from corral.operator import kube, naming
from localcluster import api, handles

T = TypeVar("T")
CORRAL = Path(sys.executable).with_name("corral")
OPERATOR_ENV = {
    "CORRAL_LISTEN_HOST": "127.0.0.1",
    "CORRAL_IMAGE": "registry.test/corral:e2e",
    "CORRAL_DRIFT_INTERVAL_SECONDS": "10",
    "CORRAL_RETRY_BASE_SECONDS": "1",
    "CORRAL_RETRY_MAX_SECONDS": "4",
    "CORRAL_REPORTING_INSTANCE": "e2e",
    "CORRAL_MCP_DISCOVERY_INTERVAL_SECONDS": "2",
    "CORRAL_MCP_RETRY_SECONDS": "2",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class OperatorProcess:
    """`corral operator -n NS...` with its own liveness and metrics ports and log file."""

    def __init__(
        self,
        cluster: handles.Cluster,
        namespaces: list[str],
        log_file: Path,
        args: tuple[str, ...] = (),
        env: dict[str, str] | None = None,
    ) -> None:
        self.cluster = cluster
        self.namespaces = namespaces
        self.log_file = log_file
        self.args = args
        self.env = env or {}
        self.metrics_port = free_port()
        self.liveness_port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        args = [str(CORRAL), "operator"]
        for namespace in self.namespaces:
            args += ["-n", namespace]
        args += ["--liveness-port", str(self.liveness_port)]
        args += ["--metrics-port", str(self.metrics_port), *self.args]
        env = {**self.cluster.env(), **OPERATOR_ENV, **self.env}
        with open(self.log_file, "ab") as log:
            self.process = subprocess.Popen(
                args, stdout=log, stderr=subprocess.STDOUT, env=env, stdin=subprocess.DEVNULL
            )
        wait_for(f"operator liveness on port {self.liveness_port}", self.alive, 60, self.log_tail)

    def stop(self) -> None:
        if self.process is not None:
            terminate(self.process)
        self.process = None

    def kill(self) -> None:
        """SIGKILL: the process gets no chance to clean up (a crashed or lost node)."""
        assert self.process is not None
        self.process.kill()
        self.process.wait(timeout=10)
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def alive(self) -> bool:
        if self.process is None or self.process.poll() is not None:
            raise AssertionError(f"the operator exited\n{self.log_tail()}")
        try:
            url = f"http://127.0.0.1:{self.liveness_port}/healthz"
            with urllib.request.urlopen(url, timeout=2) as response:
                return int(response.status) == 200
        except OSError:
            return False

    def metric(self, name: str, **labels: str) -> float:
        """The sum of samples `name` whose labels include `labels` (0 when none)."""
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            text = response.read().decode()
        total = 0.0
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == name and labels.items() <= sample.labels.items():
                    total += sample.value
        return total

    def log_tail(self, lines: int = 40) -> str:
        text = self.log_file.read_text(errors="replace") if self.log_file.exists() else ""
        return "operator log (end):\n" + "\n".join(text.splitlines()[-lines:])


def terminate(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL if the process has not ended within 20 s."""
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


def wait_for(
    what: str,
    probe: Callable[[], T],
    timeout: float,
    detail: Callable[[], str] | None = None,
    interval: float = 0.5,
) -> T:
    """Poll `probe` until it returns something truthy and return that; fail saying `what`."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(interval)
    context = f"\n{detail()}" if detail else ""
    raise AssertionError(f"{what}: not within {timeout:.0f}s (last seen: {last!r}){context}")


class Cluster:
    """Reads through the admin API client; writes the way users do, with kubectl."""

    def __init__(self, handle: handles.Cluster) -> None:
        self.handle = handle
        self.api = api.Client.admin(handle.config)

    def get(self, api_version: str, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        obj: dict[str, Any] | None = self.api.get(kube.path(api_version, kind, namespace, name))
        return obj

    def agent(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.get("corral.dev/v1alpha1", "Agent", namespace, name)

    def deployment(self, namespace: str, agent: str) -> dict[str, Any] | None:
        return self.get("apps/v1", "Deployment", namespace, naming.deployment(agent))

    def apply(self, namespace: str, *docs: dict[str, Any]) -> None:
        self.handle.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump_all(docs))

    def kubectl(self, *args: str) -> str:
        return self.handle.kubectl(*args).stdout

    def resource_versions(self, namespace: str, *objects: tuple[str, str, str]) -> dict[str, str]:
        """kind/name -> resourceVersion of each (api_version, kind, name) in `namespace`."""
        versions = {}
        for api_version, kind, name in objects:
            obj = self.get(api_version, kind, namespace, name)
            versions[f"{kind}/{name}"] = obj["metadata"]["resourceVersion"] if obj else "absent"
        return versions

    def listed(self, namespace: str, api_version: str, kind: str) -> list[dict[str, Any]]:
        """Every object of `kind` in `namespace`, in one list request."""
        items: list[dict[str, Any]] = self.api.get(kube.path(api_version, kind, namespace))["items"]
        return items

    def listed_versions(self, namespace: str, *kinds: tuple[str, str]) -> dict[str, str]:
        """kind/name -> resourceVersion of every object of each (api_version, kind), by listing."""
        return {
            f"{kind}/{obj['metadata']['name']}": obj["metadata"]["resourceVersion"]
            for api_version, kind in kinds
            for obj in self.listed(namespace, api_version, kind)
        }

    def events(self, namespace: str, reason: str | None = None) -> list[dict[str, Any]]:
        items = self.api.get(f"/api/v1/namespaces/{namespace}/events")["items"]
        return [e for e in items if reason is None or e.get("reason") == reason]


def ready(agent: dict[str, Any] | None) -> tuple[str, str] | None:
    """(status, reason) of the Agent's Ready condition for its current generation."""
    if agent is None:
        return None
    status = agent.get("status") or {}
    if status.get("observedGeneration") != agent["metadata"]["generation"]:
        return None
    for condition in status.get("conditions") or []:
        if condition["type"] == "Ready":
            return condition["status"], condition["reason"]
    return None


def wait_ready(cluster: Cluster, op: OperatorProcess, namespace: str, name: str) -> None:
    """Wait until the Agent is Ready=True/Available for its generation."""
    wait_for(
        f"Agent {namespace}/{name} Ready=True",
        lambda: ready(cluster.agent(namespace, name)) == ("True", "Available"),
        90,
        op.log_tail,
    )


def rolled_out(deployment: dict[str, Any] | None) -> bool:
    """The Deployment controller has finished with this generation (no more status writes)."""
    if deployment is None:
        return False
    status = deployment.get("status") or {}
    progressing = [c for c in status.get("conditions") or [] if c["type"] == "Progressing"]
    return (
        status.get("observedGeneration") == deployment["metadata"]["generation"]
        and bool(progressing)
        and progressing[0].get("reason") == "NewReplicaSetAvailable"
    )


def budget_settled(pdb: dict[str, Any] | None) -> bool:
    """The disruption controller has caught up with this budget (or there is none)."""
    if pdb is None:
        return True
    status = pdb.get("status") or {}
    return (
        status.get("observedGeneration") == pdb["metadata"]["generation"]
        and status.get("currentHealthy", -1) >= status.get("desiredHealthy", 0) > 0
    )


def config_hash(deployment: dict[str, Any] | None) -> str | None:
    if deployment is None:
        return None
    annotations = deployment["spec"]["template"]["metadata"].get("annotations") or {}
    value: str | None = annotations.get(naming.CONFIG_HASH)
    return value


@contextlib.contextmanager
def running(operator: OperatorProcess) -> Iterator[OperatorProcess]:
    operator.start()
    try:
        yield operator
    finally:
        operator.stop()
