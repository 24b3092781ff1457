"""Where the local control plane lives: its state dir, binary cache, loopback ports and names.

Pure data plus `Settings.from_env`, which reads the environment once (no other I/O). Everything
else in `localcluster` takes a `Settings` so tests and callers can point it elsewhere.

Environment overrides: `CORRAL_CACHE` (binary cache root, default `~/.cache/corral`),
`CORRAL_CLUSTER_DIR` (state dir, default `<repo>/.cluster`) and the ports
`CORRAL_ETCD_PORT`, `CORRAL_ETCD_PEER_PORT`, `CORRAL_APISERVER_PORT`,
`CORRAL_CONTROLLER_MANAGER_PORT`, `CORRAL_SCHEDULER_PORT`, `CORRAL_KWOK_PORT`; the real
node's `CORRAL_KUBELET_PORT`, `CORRAL_KUBELET_HEALTHZ_PORT`, `CORRAL_KUBE_PROXY_HEALTHZ_PORT`,
`CORRAL_KUBE_PROXY_METRICS_PORT`, `CORRAL_DNS_PORT` (CoreDNS, on the node's address),
`CORRAL_DNS_HEALTH_PORT`, and its bridge: `CORRAL_NODE_BRIDGE`, `CORRAL_NODE_POD_CIDR`.
`CORRAL_NODE=0` starts the control plane without the real node (kwok only): one machine runs
one real node at a time (kube-proxy owns the host's KUBE-* iptables chains).
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"


@dataclasses.dataclass(frozen=True)
class Settings:
    state_dir: Path
    cache_dir: Path
    etcd_port: int = 23790
    etcd_peer_port: int = 23800
    apiserver_port: int = 26443
    controller_manager_port: int = 26257
    scheduler_port: int = 26259
    kwok_port: int = 26080
    service_cidr: str = "10.96.0.0/16"
    service_ip: str = "10.96.0.1"  # the first address of service_cidr: the `kubernetes` Service
    pod_cidr: str = "10.244.0.0/16"
    node_ip: str = "10.240.0.1"  # kwok's fake node
    # The real node (hack/localcluster/node.py). Its address is the host's own (detected).
    node: bool = True
    kubelet_port: int = 10250
    kubelet_healthz_port: int = 10248
    kube_proxy_healthz_port: int = 10256
    kube_proxy_metrics_port: int = 10249
    dns_port: int = 10053
    dns_health_port: int = 10054
    dns_service_ip: str = "10.96.0.10"
    node_bridge: str = "corral0"
    node_pod_cidr: str = "10.88.0.0/16"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        default_cache = Path(env.get("HOME", str(Path.home()))) / ".cache" / "corral"
        ports = {
            "etcd_port": "CORRAL_ETCD_PORT",
            "etcd_peer_port": "CORRAL_ETCD_PEER_PORT",
            "apiserver_port": "CORRAL_APISERVER_PORT",
            "controller_manager_port": "CORRAL_CONTROLLER_MANAGER_PORT",
            "scheduler_port": "CORRAL_SCHEDULER_PORT",
            "kwok_port": "CORRAL_KWOK_PORT",
            "kubelet_port": "CORRAL_KUBELET_PORT",
            "kubelet_healthz_port": "CORRAL_KUBELET_HEALTHZ_PORT",
            "kube_proxy_healthz_port": "CORRAL_KUBE_PROXY_HEALTHZ_PORT",
            "kube_proxy_metrics_port": "CORRAL_KUBE_PROXY_METRICS_PORT",
            "dns_port": "CORRAL_DNS_PORT",
            "dns_health_port": "CORRAL_DNS_HEALTH_PORT",
        }
        overrides: dict[str, Any] = {
            field: int(env[var]) for field, var in ports.items() if env.get(var)
        }
        if env.get("CORRAL_NODE"):
            overrides["node"] = env["CORRAL_NODE"].lower() not in ("0", "false", "no")
        for field, var in (
            ("node_bridge", "CORRAL_NODE_BRIDGE"),
            ("node_pod_cidr", "CORRAL_NODE_POD_CIDR"),
        ):
            if env.get(var):
                overrides[field] = env[var]
        defaults = cls(
            state_dir=Path(env.get("CORRAL_CLUSTER_DIR") or REPO_ROOT / ".cluster").absolute(),
            cache_dir=Path(env.get("CORRAL_CACHE") or default_cache).absolute(),
        )
        return dataclasses.replace(defaults, **overrides)

    @property
    def host(self) -> str:
        return HOST

    @property
    def server(self) -> str:
        return f"https://{HOST}:{self.apiserver_port}"

    @property
    def etcd_url(self) -> str:
        return f"http://{HOST}:{self.etcd_port}"

    @property
    def etcd_peer_url(self) -> str:
        return f"http://{HOST}:{self.etcd_peer_port}"

    @property
    def bin_dir(self) -> Path:
        return self.cache_dir / "bin"

    @property
    def kubeconfig(self) -> Path:
        return self.state_dir / "kubeconfig"

    @property
    def pki_dir(self) -> Path:
        return self.state_dir / "pki"

    @property
    def logs_dir(self) -> Path:
        return self.state_dir / "logs"

    @property
    def pids_dir(self) -> Path:
        return self.state_dir / "pids"

    @property
    def sessions_dir(self) -> Path:
        return self.state_dir / "sessions"

    @property
    def etcd_data_dir(self) -> Path:
        return self.state_dir / "etcd"

    @property
    def kwok_dir(self) -> Path:
        return self.state_dir / "kwok"

    @property
    def node_dir(self) -> Path:
        """The real node's files: configs, credentials, kubelet and containerd roots."""
        return self.state_dir / "node"

    @property
    def node_run_dir(self) -> Path:
        """containerd's state and sockets: short, since the shims' socket paths hang off it
        (a unix socket path holds at most 107 bytes)."""
        return Path("/run/corral") / _path_key(self.state_dir)[:12]

    @property
    def containerd_socket(self) -> Path:
        return self.node_run_dir / "containerd.sock"

    @property
    def lock_file(self) -> Path:
        """Serialises up/down across processes; outside the state dir, which `down` removes."""
        return self.cache_dir / "locks" / f"cluster-{_path_key(self.state_dir)}.lock"


def _path_key(path: Path) -> str:
    return hashlib.sha256(str(path).encode()).hexdigest()[:16]
