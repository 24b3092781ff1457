"""The five processes of the control plane: how each is started and how its health is probed.

Pure: `plan` turns settings, binary paths and credential paths into `Component`s (argv, env,
port, health URL) in start order; nothing here starts anything (that is `processes`). Read this
file to see every flag the cluster runs with.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path

from localcluster import nodeconfigs, pki, settings

KWOK_DIR = settings.REPO_ROOT / "hack" / "kwok"
KWOK_NODE_ANNOTATION = "kwok.x-k8s.io/node=fake"
SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local"


@dataclasses.dataclass(frozen=True)
class Component:
    name: str
    argv: list[str]
    port: int  # must be free before the process starts
    health_url: str  # 200 once the process is serving
    env: Mapping[str, str] = dataclasses.field(default_factory=dict)


def plan(
    config: settings.Settings,
    binaries: Mapping[str, Path],
    files: pki.Files,
    address: str | None = None,
) -> list[Component]:
    """Every control-plane component, in start order: etcd, kube-apiserver, then the API
    server's clients (the real node's are `nodeconfigs.plan`). `address` is the real node's
    (None without one)."""
    return [
        etcd(config, binaries["etcd"]),
        kube_apiserver(config, binaries["kube-apiserver"], files, address),
        kube_controller_manager(config, binaries["kube-controller-manager"], files),
        kube_scheduler(config, binaries["kube-scheduler"]),
        kwok(config, binaries["kwok"]),
    ]


def etcd(config: settings.Settings, binary: Path) -> Component:
    return Component(
        name="etcd",
        argv=[
            str(binary),
            "--name=corral",
            f"--data-dir={config.etcd_data_dir}",
            f"--listen-client-urls={config.etcd_url}",
            f"--advertise-client-urls={config.etcd_url}",
            f"--listen-peer-urls={config.etcd_peer_url}",
            f"--initial-advertise-peer-urls={config.etcd_peer_url}",
            f"--initial-cluster=corral={config.etcd_peer_url}",
            "--initial-cluster-state=new",
            # A throwaway test store: durability across power loss is not worth the fsyncs.
            "--unsafe-no-fsync=true",
            # One member, no peers to lose: elect itself in ~0.1s instead of ~0.6s.
            "--heartbeat-interval=10",
            "--election-timeout=100",
            "--log-level=warn",
        ],
        port=config.etcd_port,
        health_url=f"{config.etcd_url}/health",
    )


def kube_apiserver(
    config: settings.Settings, binary: Path, files: pki.Files, address: str | None
) -> Component:
    if address is None:
        # kwok only: loopback, and no `kubernetes` endpoint (127.0.0.1 is not a valid one).
        listen = [
            f"--advertise-address={settings.HOST}",
            f"--bind-address={settings.HOST}",
            "--endpoint-reconciler-type=none",
        ]
    else:
        # Pods on the real node reach it through the `kubernetes` Service, whose endpoint is
        # the node's (the host's) address: it cannot listen on loopback only. The kubelet API
        # (logs, exec, port-forward): verified TLS, a client cert, the node's IP (its name
        # resolves nowhere).
        key, cert = nodeconfigs.files(config).cert(nodeconfigs.APISERVER_KUBELET_CLIENT)
        listen = [
            f"--advertise-address={address}",
            "--bind-address=0.0.0.0",
            f"--kubelet-client-certificate={cert}",
            f"--kubelet-client-key={key}",
            f"--kubelet-certificate-authority={files.ca_cert}",
            "--kubelet-preferred-address-types=InternalIP,Hostname",
        ]
    return Component(
        name="kube-apiserver",
        argv=[
            str(binary),
            *listen,
            f"--secure-port={config.apiserver_port}",
            f"--cert-dir={config.state_dir / 'kube-apiserver'}",
            f"--etcd-servers={config.etcd_url}",
            f"--tls-cert-file={files.server_cert}",
            f"--tls-private-key-file={files.server_key}",
            f"--client-ca-file={files.ca_cert}",
            f"--service-account-issuer={SERVICE_ACCOUNT_ISSUER}",
            f"--service-account-key-file={files.sa_pub}",
            f"--service-account-signing-key-file={files.sa_key}",
            f"--service-cluster-ip-range={config.service_cidr}",
            f"--requestheader-client-ca-file={files.front_proxy_ca_cert}",
            f"--requestheader-allowed-names={pki.FRONT_PROXY_CLIENT}",
            "--requestheader-username-headers=X-Remote-User",
            "--requestheader-group-headers=X-Remote-Group",
            "--requestheader-extra-headers-prefix=X-Remote-Extra-",
            f"--proxy-client-cert-file={files.front_proxy_client_cert}",
            f"--proxy-client-key-file={files.front_proxy_client_key}",
            "--authorization-mode=Node,RBAC",
            # PodNodeSelector and PodTolerationRestriction: a namespace's annotations send its
            # pods to the real node (nodeconfigs.namespace_annotations).
            "--enable-admission-plugins=NodeRestriction,PodNodeSelector,PodTolerationRestriction",
            "--allow-privileged=true",
            # Startup time: APF seeds and watches its own config objects; max-in-flight is
            # enough for a handful of test processes.
            "--enable-priority-and-fairness=false",
            "--profiling=false",
        ],
        port=config.apiserver_port,
        health_url=f"{config.server}/readyz",
    )


def kube_controller_manager(config: settings.Settings, binary: Path, files: pki.Files) -> Component:
    kubeconfig = str(config.kubeconfig)
    return Component(
        name="kube-controller-manager",
        argv=[
            str(binary),
            f"--kubeconfig={kubeconfig}",
            f"--authentication-kubeconfig={kubeconfig}",
            f"--authorization-kubeconfig={kubeconfig}",
            f"--bind-address={settings.HOST}",
            f"--secure-port={config.controller_manager_port}",
            f"--cert-dir={config.state_dir / 'kube-controller-manager'}",
            "--leader-elect=false",
            # Every default controller: deployment, replicaset, garbage collector, namespace,
            # serviceaccount(-token), endpointslice, disruption, HPA, job, statefulset, ...
            "--controllers=*",
            "--use-service-account-credentials=false",
            f"--service-account-private-key-file={files.sa_key}",
            f"--root-ca-file={files.ca_cert}",
            f"--cluster-signing-cert-file={files.ca_cert}",
            f"--cluster-signing-key-file={files.ca_key}",
            f"--service-cluster-ip-range={config.service_cidr}",
            # Otherwise it creates /usr/libexec/kubernetes/kubelet-plugins/volume/exec.
            f"--flex-volume-plugin-dir={config.state_dir / 'kube-controller-manager' / 'flex'}",
            "--kube-api-qps=100",
            "--kube-api-burst=200",
            "--profiling=false",
        ],
        port=config.controller_manager_port,
        health_url=f"https://{settings.HOST}:{config.controller_manager_port}/healthz",
    )


def kube_scheduler(config: settings.Settings, binary: Path) -> Component:
    kubeconfig = str(config.kubeconfig)
    return Component(
        name="kube-scheduler",
        argv=[
            str(binary),
            f"--kubeconfig={kubeconfig}",
            f"--authentication-kubeconfig={kubeconfig}",
            f"--authorization-kubeconfig={kubeconfig}",
            f"--bind-address={settings.HOST}",
            f"--secure-port={config.scheduler_port}",
            f"--cert-dir={config.state_dir / 'kube-scheduler'}",
            "--leader-elect=false",
            "--profiling=false",
        ],
        port=config.scheduler_port,
        health_url=f"https://{settings.HOST}:{config.scheduler_port}/healthz",
    )


def kwok(config: settings.Settings, binary: Path) -> Component:
    return Component(
        name="kwok",
        argv=[
            str(binary),
            f"--kubeconfig={config.kubeconfig}",
            f"--config={KWOK_DIR / 'stages.yaml'}",
            f"--manage-nodes-with-annotation-selector={KWOK_NODE_ANNOTATION}",
            f"--server-address={settings.HOST}:{config.kwok_port}",
            f"--cidr={config.pod_cidr}",
            f"--node-ip={config.node_ip}",
            "--node-lease-duration-seconds=40",
        ],
        port=config.kwok_port,
        health_url=f"http://{settings.HOST}:{config.kwok_port}/healthz",
        # kwok also reads <workdir>/kwok.yaml when it exists; keep a user's ~/.kwok out.
        env={"KWOK_WORKDIR": str(config.kwok_dir)},
    )
