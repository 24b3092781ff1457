"""The real node's configuration files and processes, rendered from settings (pure, no I/O).

One node, `corral-node`, beside kwok's fake one: containerd (CRI, runc, the CNI bridge network),
kubelet (cgroupfs on cgroup v1, TLS serving cert, webhook authentication and authorization),
kube-proxy (iptables mode) and CoreDNS (a host process answering for `kube-dns`). `node` writes
these files and starts these processes. Read this file to see every setting the node runs with.

The node is tainted `corral.dev/node=real:NoSchedule` and labelled `corral.dev/node=real`, so
the tests and benchmarks that use kwok keep their pods on kwok; a pod runs for real when it
tolerates the taint and selects the label (the chart's `nodeSelector`/`tolerations`, or a
namespace's `scheduler.alpha.kubernetes.io/*` annotations, see `namespace_annotations`).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from localcluster import components, settings

NAME = "corral-node"
LABEL = ("corral.dev/node", "real")
TAINT = {"key": "corral.dev/node", "value": "real", "effect": "NoSchedule"}
TOLERATION = {
    "key": "corral.dev/node",
    "operator": "Equal",
    "value": "real",
    "effect": "NoSchedule",
}
CLUSTER_DOMAIN = "cluster.local"
PAUSE_IMAGE = "localhost/corral/pause:1"
CONTAINERD_NAMESPACE = "k8s.io"  # the one the CRI plugin uses
COREDNS_USER = "system:corral-coredns"
KUBE_PROXY_USER = "system:kube-proxy"  # bound to system:node-proxier by the API server
APISERVER_KUBELET_CLIENT = "kube-apiserver-kubelet-client"


def namespace_annotations() -> dict[str, str]:
    """Annotations that send every pod of a namespace to the real node (the API server runs
    the PodNodeSelector and PodTolerationRestriction admission plugins for this)."""
    return {
        "scheduler.alpha.kubernetes.io/node-selector": f"{LABEL[0]}={LABEL[1]}",
        "scheduler.alpha.kubernetes.io/defaultTolerations": json.dumps([TOLERATION]),
    }


@dataclasses.dataclass(frozen=True)
class Files:
    """Where the node's files live under `<state>/node`."""

    root: Path

    def path(self, name: str) -> Path:
        return self.root / name

    @property
    def pki(self) -> Path:
        return self.root / "pki"

    def cert(self, name: str) -> tuple[Path, Path]:
        """(key, cert) of one of the node's credentials."""
        return self.pki / f"{name}.key", self.pki / f"{name}.crt"

    @property
    def bin(self) -> Path:
        """containerd's PATH: the shim, named as containerd looks it up."""
        return self.root / "bin"

    @property
    def cni_bin(self) -> Path:
        return self.root / "cni" / "bin"

    @property
    def cni_conf(self) -> Path:
        return self.root / "cni" / "net.d"

    @property
    def kubelet_root(self) -> Path:
        return self.root / "kubelet"

    @property
    def containerd_root(self) -> Path:
        return self.root / "containerd"

    @property
    def host_record(self) -> Path:
        return self.root / "host.json"


def files(config: settings.Settings) -> Files:
    return Files(config.node_dir)


def gateway(config: settings.Settings) -> str:
    """The node's address on the pod network (the bridge's): CoreDNS and forwarded host ports."""
    return str(next(ipaddress.ip_network(config.node_pod_cidr).hosts()))


def containerd_config(config: settings.Settings, node: Files) -> str:
    """containerd 2.x (config version 3): CRI with runc, the CNI bridge, the local pause image."""
    run = config.node_run_dir
    return f"""version = 3
root = "{node.containerd_root}"
state = "{run / "state"}"
disabled_plugins = ["io.containerd.nri.v1.nri", "io.containerd.tracing.processor.v1.otlp"]

[grpc]
  address = "{config.containerd_socket}"

[ttrpc]
  address = "{run / "ttrpc.sock"}"

[debug]
  address = ""

[plugins."io.containerd.cri.v1.images"]
  snapshotter = "overlayfs"
  [plugins."io.containerd.cri.v1.images".pinned_images]
    sandbox = "{PAUSE_IMAGE}"

[plugins."io.containerd.cri.v1.runtime"]
  # Pods' network namespaces under `state`, not /var/run/netns.
  netns_mounts_under_state_dir = true
  # This machine withholds CAP_SYS_RESOURCE: no oom_score_adj below containerd's own
  # (the pause container's -998 would fail to start every pod).
  restrict_oom_score_adj = true
  [plugins."io.containerd.cri.v1.runtime".cni]
    bin_dirs = ["{node.cni_bin}"]
    conf_dir = "{node.cni_conf}"
  [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc]
    runtime_type = "io.containerd.runc.v2"
    [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc.options]
      BinaryName = "/usr/sbin/runc"
      Root = "{run / "runc"}"
      SystemdCgroup = false

[plugins."io.containerd.grpc.v1.cri"]
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
"""


def cni_config(config: settings.Settings, node: Files) -> dict[str, Any]:
    """A bridge network on `node_pod_cidr`, masquerading to the outside, with host ports."""
    return {
        "cniVersion": "1.0.0",
        "name": "corral",
        "plugins": [
            {
                "type": "bridge",
                "bridge": config.node_bridge,
                "isGateway": True,
                "ipMasq": True,
                "ipMasqBackend": "iptables",
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": config.node_pod_cidr, "gateway": gateway(config)}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                    "dataDir": str(node.root / "cni" / "ipam"),
                },
            },
            {"type": "portmap", "capabilities": {"portMappings": True}, "backend": "iptables"},
        ],
    }


def kubelet_config(config: settings.Settings, node: Files, address: str) -> dict[str, Any]:
    key, cert = node.cert("kubelet-server")
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "address": address,
        "port": config.kubelet_port,
        "readOnlyPort": 0,
        "healthzBindAddress": settings.HOST,
        "healthzPort": config.kubelet_healthz_port,
        "tlsCertFile": str(cert),
        "tlsPrivateKeyFile": str(key),
        # Every request to the kubelet API is authenticated (client certs from the cluster CA,
        # or tokens via TokenReview) and authorised by the API server (SubjectAccessReview).
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": True},
            "x509": {"clientCAFile": str(config.pki_dir / "ca.crt")},
        },
        "authorization": {"mode": "Webhook"},
        "containerRuntimeEndpoint": f"unix://{config.containerd_socket}",
        # This machine's cgroups are v1 and it has no systemd: cgroupfs, and v1 allowed.
        "cgroupDriver": "cgroupfs",
        "failCgroupV1": False,
        "failSwapOn": False,
        "clusterDNS": [config.dns_service_ip],
        "clusterDomain": CLUSTER_DOMAIN,
        "registerWithTaints": [TAINT],
        # A developer machine's disk is rarely 85% free: no eviction or image GC over it
        # (the locally built images cannot be pulled back once collected).
        "evictionHard": {
            "memory.available": "100Mi",
            "nodefs.available": "1%",
            "imagefs.available": "1%",
            "nodefs.inodesFree": "1%",
        },
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "serializeImagePulls": False,
        "syncFrequency": "10s",
        "fileCheckFrequency": "10s",
        "nodeStatusReportFrequency": "10s",
        "shutdownGracePeriod": "0s",
    }


def kube_proxy_config(config: settings.Settings, kubeconfig: Path) -> dict[str, Any]:
    return {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "mode": "iptables",
        "clientConnection": {"kubeconfig": str(kubeconfig)},
        "hostnameOverride": NAME,
        "clusterCIDR": config.node_pod_cidr,
        "healthzBindAddress": f"{settings.HOST}:{config.kube_proxy_healthz_port}",
        "metricsBindAddress": f"{settings.HOST}:{config.kube_proxy_metrics_port}",
        # Leave the host's conntrack table size and timeouts alone.
        "conntrack": {
            "maxPerCore": 0,
            "min": 0,
            "tcpEstablishedTimeout": "0s",
            "tcpCloseWaitTimeout": "0s",
        },
        # Otherwise it sets net.ipv4.conf.all.route_localnet=1 for NodePorts on 127.0.0.1.
        "iptables": {"localhostNodePorts": False},
        "nodePortAddresses": ["primary"],
    }


def corefile(config: settings.Settings, kubeconfig: Path) -> str:
    """Cluster DNS for `cluster.local` from the API server, the rest from the host's resolver."""
    return f""".:{config.dns_port} {{
    bind {gateway(config)}
    errors
    health {settings.HOST}:{config.dns_health_port}
    kubernetes {CLUSTER_DOMAIN} in-addr.arpa ip6.arpa {{
        kubeconfig {kubeconfig}
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
    }}
    forward . /etc/resolv.conf
    cache 30
    loadbalance
}}
"""


def dns_objects(config: settings.Settings) -> list[tuple[str, dict[str, Any]]]:
    """The `kube-dns` Service (the address pods resolve with) and its one endpoint: CoreDNS on
    the node's bridge address. Pairs of (collection path, object)."""
    labels = {"k8s-app": "kube-dns", "kubernetes.io/name": "CoreDNS"}
    ports = [("dns", "UDP"), ("dns-tcp", "TCP")]
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "kube-dns", "namespace": "kube-system", "labels": labels},
        "spec": {
            "clusterIP": config.dns_service_ip,
            "ports": [
                {"name": n, "protocol": p, "port": 53, "targetPort": config.dns_port}
                for n, p in ports
            ],
        },
    }
    slice_ = {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": "kube-dns-node",
            "namespace": "kube-system",
            "labels": {**labels, "kubernetes.io/service-name": "kube-dns"},
        },
        "addressType": "IPv4",
        "endpoints": [{"addresses": [gateway(config)], "conditions": {"ready": True}}],
        "ports": [{"name": n, "protocol": p, "port": config.dns_port} for n, p in ports],
    }
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": "corral:coredns"},
        "rules": [
            {
                "apiGroups": [""],
                "resources": ["services", "namespaces", "pods"],
                "verbs": ["list", "watch"],
            },
            {
                "apiGroups": ["discovery.k8s.io"],
                "resources": ["endpointslices"],
                "verbs": ["list", "watch"],
            },
        ],
    }
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": "corral:coredns"},
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": "corral:coredns",
        },
        "subjects": [
            {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": COREDNS_USER}
        ],
    }
    return [
        ("/api/v1/namespaces/kube-system/services", service),
        ("/apis/discovery.k8s.io/v1/namespaces/kube-system/endpointslices", slice_),
        ("/apis/rbac.authorization.k8s.io/v1/clusterroles", role),
        ("/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", binding),
    ]


def plan(
    config: settings.Settings, binaries: Mapping[str, Path], address: str
) -> list[components.Component]:
    """The node's processes in start order (containerd first: kubelet needs its socket)."""
    node = files(config)
    return [
        components.Component(
            name="containerd",
            argv=[str(binaries["containerd"]), f"--config={node.path('containerd.toml')}"],
            port=0,
            health_url="",
            env={
                "PATH": f"{node.bin}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
            },
        ),
        components.Component(
            name="coredns",
            argv=[str(binaries["coredns"]), "-conf", str(node.path("Corefile"))],
            port=config.dns_health_port,
            health_url=f"http://{settings.HOST}:{config.dns_health_port}/health",
        ),
        components.Component(
            name="kubelet",
            argv=[
                str(binaries["kubelet"]),
                f"--config={node.path('kubelet.yaml')}",
                f"--kubeconfig={node.path('kubelet.kubeconfig')}",
                f"--root-dir={node.kubelet_root}",
                f"--cert-dir={node.pki}",
                f"--hostname-override={NAME}",
                f"--node-ip={address}",
                f"--node-labels={LABEL[0]}={LABEL[1]}",
            ],
            port=config.kubelet_healthz_port,
            health_url=f"http://{settings.HOST}:{config.kubelet_healthz_port}/healthz",
        ),
        components.Component(
            name="kube-proxy",
            argv=[str(binaries["kube-proxy"]), f"--config={node.path('kube-proxy.yaml')}"],
            port=config.kube_proxy_healthz_port,
            health_url=f"http://{settings.HOST}:{config.kube_proxy_healthz_port}/healthz",
        ),
    ]
