"""The whole control plane: `up`, `down` and `status`, each idempotent and safe to run
concurrently from several processes (a file lock serialises them).

Does I/O: builds missing binaries, writes the state dir, starts and stops processes, talks to the
API server. Called by `hack/cluster.py` and by `sessions` (the pytest fixture).

`up` starts only what is not already running, in order (etcd, kube-apiserver, then
controller-manager, scheduler and kwok, then the real node: containerd, CoreDNS, kubelet,
kube-proxy), registers the kwok node, and returns once the API server is ready, every component
is healthy, the `default` ServiceAccount exists and both nodes are Ready. It is all-or-nothing:
if anything fails, it stops what it started (and puts back the host state the node changed).
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import shutil
import ssl
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

from localcluster import (
    api,
    binaries,
    components,
    handles,
    kubeconfigs,
    leases,
    node,
    nodeconfigs,
    output,
    pki,
    probes,
    processes,
    settings,
)

NODE_MANIFEST = components.KWOK_DIR / "node.yaml"
APISERVER_TIMEOUT = 120.0
COMPONENT_TIMEOUT = 60.0


@dataclasses.dataclass(frozen=True)
class ComponentStatus:
    name: str
    pid: int | None
    healthy: bool


@dataclasses.dataclass(frozen=True)
class Status:
    components: list[ComponentStatus]
    node_ready: bool  # kwok's
    real_node_ready: bool

    @property
    def ready(self) -> bool:
        return self.node_ready and self.real_node_ready and all(c.healthy for c in self.components)


def up(config: settings.Settings | None = None, log: output.Log | None = None) -> handles.Cluster:
    """Build what is missing, start what is not running, and wait until the cluster is usable."""
    config = config or settings.Settings.from_env()
    say = log or output.stderr
    paths = binaries.ensure(config, binaries.CLUSTER, log=say)
    with lock(config):
        start(config, paths, say)
    return handle(config)


def down(config: settings.Settings | None = None, log: output.Log | None = None) -> None:
    """Stop exactly the processes `up` recorded, then remove the state dir."""
    config = config or settings.Settings.from_env()
    say = log or output.stderr
    with lock(config):
        users = leases.live(config)
        if users:
            say(f"stopping it although {len(users)} test session(s) still use it")
        stop(config, say)


def handle(config: settings.Settings | None = None) -> handles.Cluster:
    return handles.Cluster.from_settings(config or settings.Settings.from_env())


@contextlib.contextmanager
def lock(config: settings.Settings) -> Iterator[None]:
    """Hold the cluster's lock (blocking); callers of `start`/`stop` must hold it."""
    config.lock_file.parent.mkdir(parents=True, exist_ok=True)
    with open(config.lock_file, "w") as handle_:
        fcntl.flock(handle_, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle_, fcntl.LOCK_UN)


def start(config: settings.Settings, paths: Mapping[str, Path], log: output.Log) -> list[str]:
    """`up` without the build and the lock: start whatever is not running, wait for readiness.
    Return the names of the components it launched (none when all were running)."""
    if _kubeconfig_server(config) == config.server and status(config).ready:
        log(f"already running: KUBECONFIG={config.kubeconfig}")
        return []
    launched: list[str] = []

    def launch(component: components.Component) -> None:
        if _launch(config, component, log):
            launched.append(component.name)

    try:
        _start(config, paths, log, launch)
    except BaseException:
        log(f"cluster-up failed: stopping what it started ({', '.join(launched) or 'nothing'})")
        node.stop(config, log)
        for name in reversed(launched):
            log(f"{name}: {processes.stop(config, name)}")
        raise
    return launched


def _start(
    config: settings.Settings, paths: Mapping[str, Path], log: output.Log, launch: node.Launch
) -> None:
    started = time.monotonic()
    files = pki.ensure(config)
    # A kubeconfig left by a cluster on other ports must not point the components elsewhere.
    if _kubeconfig_server(config) != config.server:
        kubeconfigs.write(config, files)
    address = None
    if config.node:
        node.prepare(config, log)
        address = node.host_address()
        node.ensure_pki(config, files, address)
    etcd, apiserver, *clients = components.plan(config, paths, files, address)
    admin_tls = probes.admin_tls(files)

    # The API server retries etcd until it answers, so both start at once.
    launch(etcd)
    launch(apiserver)
    _wait_healthy(config, etcd, None, COMPONENT_TIMEOUT)
    _wait_healthy(config, apiserver, admin_tls, APISERVER_TIMEOUT)
    log(f"kube-apiserver /readyz OK {time.monotonic() - started:.1f}s after start")

    for component in clients:
        launch(component)
    client = api.Client(config.server, admin_tls)
    fake = kwok_node()
    client.create("/api/v1/nodes", fake)
    for component in clients:
        _wait_healthy(config, component, probes.self_signed_tls(), COMPONENT_TIMEOUT)
    probes.wait_for(
        "the default ServiceAccount in namespace default",
        lambda: client.get("/api/v1/namespaces/default/serviceaccounts/default") is not None,
        COMPONENT_TIMEOUT,
        lambda: processes.tail(processes.log_file(config, "kube-controller-manager")),
    )
    name = fake["metadata"]["name"]
    probes.wait_for(
        f"node {name}",
        lambda: _node_ready(client, name),
        COMPONENT_TIMEOUT,
        lambda: processes.tail(processes.log_file(config, "kwok")),
    )
    if address is not None:
        node.start(config, paths, client, address, launch, log)
    where = f" (node {nodeconfigs.NAME} at {address})" if address else " (kwok only)"
    log(
        f"cluster ready {time.monotonic() - started:.1f}s after start{where}: "
        f"KUBECONFIG={config.kubeconfig}"
    )


def stop(config: settings.Settings, log: output.Log) -> None:
    """`down` without the lock."""
    node.stop(config, log)
    for name in reversed([c.name for c in _plan(config)]):
        log(f"{name}: {processes.stop(config, name)}")
    if config.state_dir.exists():
        shutil.rmtree(config.state_dir)
        log(f"removed {config.state_dir}")


def status(config: settings.Settings | None = None) -> Status:
    """Which recorded processes run and answer their health check; whether the node is Ready."""
    config = config or settings.Settings.from_env()
    files = pki.files(config)
    admin_tls = probes.admin_tls(files) if files.root.is_dir() else None
    result = []
    for component in _plan(config):
        record = processes.running(config, component.name)
        tls = admin_tls if component.name == "kube-apiserver" else probes.self_signed_tls()
        healthy = record is not None and probes.healthy(component.health_url, tls)
        result.append(
            ComponentStatus(component.name, None if record is None else record.pid, healthy)
        )
    for name, url in _node_health(config):
        record = processes.running(config, name)
        healthy = record is not None and (not url or probes.healthy(url))
        result.append(ComponentStatus(name, None if record is None else record.pid, healthy))
    apiserver_healthy = any(c.name == "kube-apiserver" and c.healthy for c in result)
    node_ready = real_node_ready = False
    if admin_tls is not None and apiserver_healthy:
        client = api.Client(config.server, admin_tls)
        node_ready = _node_ready(client, kwok_node()["metadata"]["name"])
        real_node_ready = _node_ready(client, nodeconfigs.NAME) or not config.node
    return Status(result, node_ready, real_node_ready)


def kwok_node() -> dict[str, Any]:
    """The fake Node kwok manages (hack/kwok/node.yaml)."""
    node: dict[str, Any] = yaml.safe_load(NODE_MANIFEST.read_text())
    return node


def _plan(config: settings.Settings) -> list[components.Component]:
    paths = {b.name: binaries.path(config, b.name) for b in binaries.BINARIES}
    return components.plan(config, paths, pki.files(config))


def _node_health(config: settings.Settings) -> list[tuple[str, str]]:
    if not config.node:
        return []
    paths = {b.name: binaries.path(config, b.name) for b in binaries.BINARIES}
    return [(c.name, c.health_url) for c in nodeconfigs.plan(config, paths, settings.HOST)]


def _kubeconfig_server(config: settings.Settings) -> str | None:
    """The API server the state dir's kubeconfig points at (None without one)."""
    try:
        document = yaml.safe_load(config.kubeconfig.read_text())
        return str(document["clusters"][0]["cluster"]["server"])
    except (FileNotFoundError, KeyError, IndexError, TypeError, yaml.YAMLError):
        return None


def _launch(config: settings.Settings, component: components.Component, log: output.Log) -> bool:
    """Start `component` unless it runs; True if it was started."""
    record = processes.running(config, component.name)
    if record is not None:
        log(f"{component.name}: already running (pid {record.pid})")
        return False
    record = processes.start(config, component)
    log(
        f"{component.name}: started pid {record.pid}, "
        f"log {processes.log_file(config, component.name)}"
    )
    return True


def _wait_healthy(
    config: settings.Settings,
    component: components.Component,
    tls: ssl.SSLContext | None,
    timeout: float,
) -> None:
    def check() -> bool:
        died = processes.exited_early(config, component.name)
        if died is not None:
            raise processes.StartError(f"{component.name} exited; the end of its log:\n{died}")
        return probes.healthy(component.health_url, tls)

    probes.wait_for(
        f"{component.name} ({component.health_url})",
        check,
        timeout,
        lambda: processes.tail(processes.log_file(config, component.name)),
    )


def _node_ready(client: api.Client, name: str) -> bool:
    node = client.get(f"/api/v1/nodes/{name}")
    conditions = (node or {}).get("status", {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
