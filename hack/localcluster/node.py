"""The real node: containerd, CoreDNS, kubelet and kube-proxy on this machine, started after the
control plane and stopped before it, leaving the host as it was.

Does I/O: needs root; installs runc/iptables with apt-get once (`debian`), writes `<state>/node`
and `/run/corral/<key>`, starts processes, changes host state that `hoststate` records first
and restores in `stop`. Called by `cluster.start`/`cluster.stop`.

Pods on this node reach the host's loopback-bound servers (the llama.cpp model server) at the
node's bridge address (`nodeconfigs.gateway`, 10.88.0.1 by default) once `expose_host_port`
has forwarded that port: a DNAT rule from the bridge to 127.0.0.1, which the kernel accepts
because `route_localnet` is set on the bridge (and only there).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path

import yaml

from localcluster import (
    api,
    binaries,
    components,
    debian,
    hoststate,
    images,
    kubeconfigs,
    nodeconfigs,
    output,
    pki,
    probes,
    processes,
    settings,
)

BINARIES = (
    "containerd",
    "containerd-shim-runc-v2",
    "ctr",
    "kubelet",
    "kube-proxy",
    "coredns",
    "cni-bridge",
    "cni-loopback",
    "cni-host-local",
    "cni-portmap",
)
NAMES = ("containerd", "coredns", "kubelet", "kube-proxy")  # the processes, in start order
HOST_CHAIN = "CORRAL-HOST-PORTS"
# How `cluster` starts one component (and remembers that it did, to stop it if `up` fails).
Launch = Callable[[components.Component], None]
TIMEOUT = 60.0
OWNER = Path("/run/corral/node.owner")  # the state dir of the cluster whose node runs here


class NodeError(RuntimeError):
    """The node cannot run here (not root, no address); says what to do."""


def host_address() -> str:
    """The host's primary IPv4 address (the one its default route leaves from): the node's
    InternalIP, where the API server is reachable for pods and kubelet serves its API."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("198.51.100.1", 9))  # no packet is sent: this only picks a route
        except OSError as error:
            raise NodeError(
                f"no IPv4 route out of this machine ({error}): the real node needs an address"
            ) from error
        address: str = probe.getsockname()[0]
    return address


def ensure_pki(config: settings.Settings, files: pki.Files, address: str) -> None:
    """The node's credentials, signed by the cluster CA (kept once made, like the cluster's)."""
    node = nodeconfigs.files(config)
    if (node.pki / "done").exists():
        return
    node.pki.mkdir(parents=True, exist_ok=True)
    client = ["extendedKeyUsage = clientAuth"]
    pki.issue(
        files,
        node.cert("kubelet-server"),
        f"/CN={nodeconfigs.NAME}",
        [
            "extendedKeyUsage = serverAuth",
            f"subjectAltName = IP:{address},IP:{settings.HOST},DNS:{nodeconfigs.NAME}",
        ],
    )
    pki.issue(
        files,
        node.cert("kubelet-client"),
        f"/O=system:nodes/CN=system:node:{nodeconfigs.NAME}",
        client,
    )
    # The API server's client cert for the kubelet API (logs, exec, port-forward).
    pki.issue(
        files,
        node.cert(nodeconfigs.APISERVER_KUBELET_CLIENT),
        f"/O=system:masters/CN={nodeconfigs.APISERVER_KUBELET_CLIENT}",
        client,
    )
    pki.issue(files, node.cert("kube-proxy"), f"/CN={nodeconfigs.KUBE_PROXY_USER}", client)
    pki.issue(files, node.cert("coredns"), f"/CN={nodeconfigs.COREDNS_USER}", client)
    (node.pki / "done").touch()


def prepare(config: settings.Settings, log: output.Log) -> None:
    """Before anything starts: root, packages, the host's state recorded, the bridge made."""
    if os.geteuid() != 0:
        raise NodeError(
            "the real node (kubelet, containerd) must run as root: run `make cluster-up` as root"
        )
    _claim(config)
    debian.ensure(config, debian.NODE, log)
    node = nodeconfigs.files(config)
    hoststate.record(node.host_record)
    bridge = config.node_bridge
    if not Path(f"/sys/class/net/{bridge}").exists():
        prefix = config.node_pod_cidr.split("/")[1]
        _run(["ip", "link", "add", bridge, "type", "bridge"])
        _run(["ip", "addr", "add", f"{nodeconfigs.gateway(config)}/{prefix}", "dev", bridge])
        _run(["ip", "link", "set", bridge, "up"])
    # Pod -> Service -> pod on the same bridge goes through kube-proxy's NAT only with these.
    if not Path("/proc/sys/net/bridge").is_dir() and shutil.which("modprobe"):
        _run(["modprobe", "br_netfilter"], check=False)
    hoststate.write_sysctl("net.bridge.bridge-nf-call-iptables", "1")
    hoststate.write_sysctl("net.ipv4.ip_forward", "1")
    # Accept pod traffic DNATed to 127.0.0.1 (expose_host_port) on this bridge only.
    hoststate.write_sysctl(f"net.ipv4.conf.{bridge}.route_localnet", "1")


def write_files(config: settings.Settings, paths: Mapping[str, Path], address: str) -> None:
    node = nodeconfigs.files(config)
    for directory in (node.bin, node.cni_bin, node.cni_conf, config.node_run_dir):
        directory.mkdir(parents=True, exist_ok=True)
    _link(paths["containerd-shim-runc-v2"], node.bin / "containerd-shim-runc-v2")
    for name in ("bridge", "loopback", "host-local", "portmap"):
        _link(paths[f"cni-{name}"], node.cni_bin / name)
    node.path("containerd.toml").write_text(nodeconfigs.containerd_config(config, node))
    (node.cni_conf / "10-corral.conflist").write_text(
        json.dumps(nodeconfigs.cni_config(config, node), indent=1)
    )
    ca = config.pki_dir / "ca.crt"
    for name, user in (
        ("kubelet", "kubelet-client"),
        ("kube-proxy", "kube-proxy"),
        ("coredns", "coredns"),
    ):
        key, cert = node.cert(user)
        document = kubeconfigs.render(
            config.server, ca.read_bytes(), cert.read_bytes(), key.read_bytes()
        )
        target = node.path(f"{name}.kubeconfig")
        target.write_text(yaml.safe_dump(document, sort_keys=False))
        target.chmod(0o600)
    node.path("kubelet.yaml").write_text(
        yaml.safe_dump(nodeconfigs.kubelet_config(config, node, address), sort_keys=False)
    )
    node.path("kube-proxy.yaml").write_text(
        yaml.safe_dump(
            nodeconfigs.kube_proxy_config(config, node.path("kube-proxy.kubeconfig")),
            sort_keys=False,
        )
    )
    node.path("Corefile").write_text(nodeconfigs.corefile(config, node.path("coredns.kubeconfig")))


def start(
    config: settings.Settings,
    paths: Mapping[str, Path],
    client: api.Client,
    address: str,
    launch: Launch,
    log: output.Log,
) -> None:
    """Start the node's processes (the control plane is up) and wait until the node is Ready."""
    write_files(config, paths, address)
    containerd, coredns, kubelet, kube_proxy = nodeconfigs.plan(config, paths, address)
    launch(containerd)
    probes.wait_for(
        "containerd",
        lambda: _alive(config, "containerd") and _ctr(config, paths, "version") == 0,
        TIMEOUT,
        lambda: processes.tail(processes.log_file(config, "containerd")),
        interval=0.2,
    )
    pause = images.pause(config)
    if not images.imported(config, paths["ctr"], pause):
        images.import_into(config, paths["ctr"], pause)
    for path, obj in nodeconfigs.dns_objects(config):
        if client.get(f"{path}/{obj['metadata']['name']}") is None:
            client.create(path, obj)
    for component in (coredns, kubelet, kube_proxy):
        launch(component)
    for component in (coredns, kubelet, kube_proxy):
        probes.wait_for(
            component.name,
            lambda c=component: _alive(config, c.name) and probes.healthy(c.health_url),
            TIMEOUT,
            lambda c=component: processes.tail(processes.log_file(config, c.name)),
        )
    probes.wait_for(
        f"node {nodeconfigs.NAME}",
        lambda: node_ready(client),
        TIMEOUT,
        lambda: processes.tail(processes.log_file(config, "kubelet")),
    )


def stop(config: settings.Settings, log: output.Log) -> None:
    """Stop the node's processes and its containers, then restore the host's state."""
    node = nodeconfigs.files(config)
    for name in ("kube-proxy", "kubelet", "coredns"):
        log(f"{name}: {processes.stop(config, name)}")
    if processes.running(config, "containerd") is not None:
        killed = _kill_containers(config)
        if killed:
            log(f"containerd: removed {killed} containers")
    log(f"containerd: {processes.stop(config, 'containerd')}")
    shims = _stop_shims(config)
    if shims:
        log(f"containerd: stopped {shims} shims")
    for line in hoststate.restore(
        node.host_record, [node.root, config.node_run_dir], config.node_bridge
    ):
        log(line)
    shutil.rmtree(config.node_run_dir, ignore_errors=True)
    if OWNER.is_file() and OWNER.read_text() == str(config.state_dir):
        OWNER.unlink()
    with contextlib.suppress(OSError):  # only when no other cluster's files are left in it
        OWNER.parent.rmdir()


def _claim(config: settings.Settings) -> None:
    """One real node per machine: kube-proxy owns the host's KUBE-* chains, and a second one
    would rewrite the first one's rules."""
    if OWNER.is_file():
        other = Path(OWNER.read_text())
        if other != config.state_dir and (other / "node" / "host.json").exists():
            raise NodeError(
                f"another cluster's real node runs on this machine (state dir {other}): stop "
                f"it first (CORRAL_CLUSTER_DIR={other} make cluster-down), or start this "
                "cluster without a node (CORRAL_NODE=0)"
            )
    OWNER.parent.mkdir(parents=True, exist_ok=True)
    OWNER.write_text(str(config.state_dir))


def expose_host_port(config: settings.Settings, port: int) -> str:
    """Let pods reach a server listening on the host's 127.0.0.1:`port`; return the
    `host:port` they use (the node's bridge address). Idempotent; undone by `stop`."""
    gateway = nodeconfigs.gateway(config)
    if _run(["iptables", "-t", "nat", "-n", "-L", HOST_CHAIN], check=False) != 0:
        _run(["iptables", "-t", "nat", "-N", HOST_CHAIN])
        _run(
            ["iptables", "-t", "nat", "-I", "PREROUTING", "-i", config.node_bridge,
             "-d", gateway, "-j", HOST_CHAIN]
        )  # fmt: skip
    rule = ["-p", "tcp", "--dport", str(port), "-j", "DNAT", "--to-destination",
            f"{settings.HOST}:{port}"]  # fmt: skip
    if _run(["iptables", "-t", "nat", "-C", HOST_CHAIN, *rule], check=False) != 0:
        _run(["iptables", "-t", "nat", "-A", HOST_CHAIN, *rule])
    return f"{gateway}:{port}"


def load_image(config: settings.Settings, image: images.Image) -> None:
    """Make `image` available to the node's pods (imported into its containerd, once)."""
    ctr = binaries.path(config, "ctr")
    if not images.imported(config, ctr, image):
        images.import_into(config, ctr, image)


def node_ready(client: api.Client) -> bool:
    node = client.get(f"/api/v1/nodes/{nodeconfigs.NAME}")
    conditions = (node or {}).get("status", {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def _kill_containers(config: settings.Settings) -> int:
    """SIGKILL every container task of the node's containerd and delete it (kubelet is already
    stopped: nobody would stop them gracefully), so their mounts and network namespaces go."""
    ctr = binaries.path(config, "ctr")
    if not ctr.exists():
        return 0
    base = [str(ctr), f"--address={config.containerd_socket}",
            f"--namespace={nodeconfigs.CONTAINERD_NAMESPACE}"]  # fmt: skip
    listing = subprocess.run([*base, "tasks", "ls", "--quiet"], capture_output=True, text=True)
    tasks = listing.stdout.split()
    if tasks:  # --force: SIGKILL, wait for the exit, delete
        subprocess.run([*base, "tasks", "delete", "--force", *tasks], capture_output=True)
    containers = subprocess.run(
        [*base, "containers", "ls", "--quiet"], capture_output=True, text=True
    ).stdout.split()
    if containers:
        subprocess.run([*base, "containers", "delete", *containers], capture_output=True)
    return len(tasks)


def _stop_shims(config: settings.Settings) -> int:
    """Stop the runc shims this node's containerd started: they outlive containerd by design.
    They are recognised by their `-address`, which names this node's own run dir."""
    marker = f"{config.containerd_socket}".encode()
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"containerd-shim-runc-v2" in argv[0] and marker in argv:
            found.append(int(proc.name))
    for pid in found:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return len(found)


def _alive(config: settings.Settings, name: str) -> bool:
    died = processes.exited_early(config, name)
    if died is not None:
        raise processes.StartError(f"{name} exited; the end of its log:\n{died}")
    return True


def _ctr(config: settings.Settings, paths: Mapping[str, Path], *args: str) -> int:
    argv = [str(paths["ctr"]), f"--address={config.containerd_socket}", *args]
    return subprocess.run(argv, capture_output=True).returncode


def _link(target: Path, link: Path) -> None:
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(target)


def _run(argv: list[str], check: bool = True) -> int:
    result = subprocess.run(argv, capture_output=True, text=True)
    if check and result.returncode != 0:
        raise NodeError(f"`{' '.join(argv)}` failed: {result.stderr.strip()}")
    return result.returncode
