"""`Api`: the pinned kubectl bound to one namespace, for the API tests. Does I/O (subprocesses)."""

from __future__ import annotations

import json
import subprocess
from typing import Any

from localcluster import handles


class Api:
    """Small helpers over the pinned kubectl, namespaced."""

    def __init__(self, cluster: handles.Cluster, namespace: str) -> None:
        self.cluster = cluster
        self.namespace = namespace

    def apply(
        self, *manifests: dict[str, Any], check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Server-side apply; stderr holds rejections and warnings."""
        stream = "\n".join(json.dumps(manifest) for manifest in manifests)
        return self.cluster.kubectl(
            "apply",
            "--server-side",
            "-n",
            self.namespace,
            "-f",
            "-",
            input=stream,
            check=check,
        )

    def get(self, resource: str) -> dict[str, Any]:
        result = self.cluster.kubectl("get", resource, "-n", self.namespace, "-o", "json")
        obj: dict[str, Any] = json.loads(result.stdout)
        return obj

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        return self.cluster.kubectl(*args, "-n", self.namespace, input=input, check=check)
