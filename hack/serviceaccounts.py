"""A kubeconfig that authenticates as a ServiceAccount, from a TokenRequest.

Used by `make demo` and by the chart's RBAC test to run the operator locally with exactly
the permissions the Helm chart grants it, so a missing verb fails loudly. Does I/O: runs the
pinned kubectl (`kubectl create token`) and writes the kubeconfig file.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from localcluster import handles


def kubeconfig(
    cluster: handles.Cluster, namespace: str, name: str, path: Path, hours: int = 4
) -> Path:
    """Write a kubeconfig for ServiceAccount `namespace/name` to `path`; return `path`."""
    token = cluster.kubectl(
        "create", "token", name, "-n", namespace, f"--duration={hours}h"
    ).stdout.strip()
    admin = yaml.safe_load(cluster.kubeconfig.read_text())
    server = admin["clusters"][0]["cluster"]
    user = f"system:serviceaccount:{namespace}:{name}"
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "local", "cluster": server}],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [
            {"name": "sa", "context": {"cluster": "local", "user": user, "namespace": namespace}}
        ],
        "current-context": "sa",
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return path
