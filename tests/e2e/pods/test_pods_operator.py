"""`helm install` of the chart with the locally built image runs the operator as a real pod on
the real node: with the chart's ServiceAccount, and a liveness probe the kubelet runs and that
passes (the kubelet's own probe metrics say so)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from pods_e2e import Release, condition, get

from localcluster import handles, images, nodeconfigs, probes

pytestmark = [pytest.mark.cluster, pytest.mark.e2e]


def kubelet_probe_results(cluster: handles.Cluster, namespace: str, pod: str) -> dict[str, int]:
    """`probe_type/result` -> count, from the kubelet's /metrics/probes (through the API
    server's node proxy: the kubelet authenticates and authorises that request)."""
    text = cluster.kubectl(
        "get", "--raw", f"/api/v1/nodes/{nodeconfigs.NAME}/proxy/metrics/probes"
    ).stdout
    counts: dict[str, int] = {}
    for line in text.splitlines():
        if not line.startswith("prober_probe_total{") or f'pod="{pod}"' not in line:
            continue
        if f'namespace="{namespace}"' not in line:
            continue
        labels = dict(re.findall(r'(\w+)="([^"]*)"', line))
        key = f"{labels['probe_type']}/{labels['result']}"
        counts[key] = counts.get(key, 0) + int(float(line.rsplit(" ", 1)[1]))
    return counts


def test_helm_runs_the_operator_as_a_pod_with_the_charts_service_account_and_live(
    cluster: handles.Cluster, release: Release, image: images.Image
) -> None:
    selector = f"app.kubernetes.io/instance={release.name},app.kubernetes.io/component=operator"
    pods = get(cluster, release.namespace, "pods", "-l", selector)["items"]
    # The chart runs two replicas under one Lease (--peering): both are pods on the real node.
    assert len(pods) == 2, [p["metadata"]["name"] for p in pods]
    for pod in pods:
        check_operator_pod(cluster, release, image, pod)


def check_operator_pod(
    cluster: handles.Cluster, release: Release, image: images.Image, pod: dict[str, Any]
) -> None:
    name = pod["metadata"]["name"]
    assert pod["spec"]["nodeName"] == nodeconfigs.NAME
    assert pod["spec"]["serviceAccountName"] == release.name
    (container,) = pod["spec"]["containers"]
    assert container["image"] == image.reference
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert condition(pod, "Ready")["status"] == "True"

    # The kubelet has probed liveness at least once, and every probe passed.
    probes.wait_for(
        "a liveness probe of the operator pod",
        lambda: (
            kubelet_probe_results(cluster, release.namespace, name).get("Liveness/successful", 0)
            > 0
        ),
        timeout=120,
        detail=lambda: str(kubelet_probe_results(cluster, release.namespace, name)),
        interval=1.0,
    )
    results = kubelet_probe_results(cluster, release.namespace, name)
    assert not [k for k in results if k.startswith("Liveness/") and k != "Liveness/successful"]
    restarts = get(cluster, release.namespace, "pod", name)["status"]["containerStatuses"]
    assert restarts[0]["restartCount"] == 0
    # The same endpoint, reached through the API server's pod proxy.
    port = container["livenessProbe"]["httpGet"]["port"]
    if isinstance(port, str):  # a named port: the pod proxy wants its number
        port = next(p["containerPort"] for p in container["ports"] if p.get("name") == port)
    assert cluster.kubectl(
        "get", "--raw", f"/api/v1/namespaces/{release.namespace}/pods/{name}:{port}/proxy/healthz"
    ).stdout
