"""`Cluster`: what callers hold once the control plane is up — its kubeconfig, server URL and the
pinned kubectl and helm, with helpers that run them against it.

`kubectl`/`helm` do I/O (subprocesses); constructing a `Cluster` does not. Returned by
`cluster.up`/`cluster.handle` and yielded by `sessions.session` (the pytest `cluster` fixture).
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
from pathlib import Path

from localcluster import binaries, settings


class CommandError(subprocess.CalledProcessError):
    """kubectl or helm failed; unlike CalledProcessError, str() includes its output."""

    def __str__(self) -> str:
        return f"{super().__str__()}\nstdout:\n{self.stdout or ''}\nstderr:\n{self.stderr or ''}"


@dataclasses.dataclass(frozen=True)
class Cluster:
    config: settings.Settings
    kubeconfig: Path
    server: str
    kubectl_path: Path
    helm_path: Path

    @classmethod
    def from_settings(cls, config: settings.Settings) -> Cluster:
        return cls(
            config=config,
            kubeconfig=config.kubeconfig,
            server=config.server,
            kubectl_path=binaries.path(config, "kubectl"),
            helm_path=binaries.path(config, "helm"),
        )

    @property
    def state_dir(self) -> Path:
        return self.config.state_dir

    def env(self) -> dict[str, str]:
        """os.environ pointed at this cluster: KUBECONFIG, and helm's dirs in the state dir."""
        helm = self.config.state_dir / "helm"
        return {
            **os.environ,
            "KUBECONFIG": str(self.kubeconfig),
            "HELM_CACHE_HOME": str(helm / "cache"),
            "HELM_CONFIG_HOME": str(helm / "config"),
            "HELM_DATA_HOME": str(helm / "data"),
        }

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 120.0
    ) -> subprocess.CompletedProcess[str]:
        """Run the pinned kubectl with this cluster's kubeconfig; text in, text out."""
        argv = [str(self.kubectl_path), f"--kubeconfig={self.kubeconfig}", *args]
        return self._run(argv, input, check, timeout)

    def helm(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 300.0
    ) -> subprocess.CompletedProcess[str]:
        """Run the pinned helm with this cluster's kubeconfig; text in, text out."""
        argv = [str(self.helm_path), f"--kubeconfig={self.kubeconfig}", *args]
        return self._run(argv, input, check, timeout)

    def create_namespace(
        self,
        name: str,
        labels: dict[str, str] | None = None,
        annotations: dict[str, str] | None = None,
    ) -> str:
        """Create namespace `name` and wait until pods can be created in it (its `default`
        ServiceAccount exists); return the name."""
        manifest = json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {
                    "name": name,
                    "labels": labels or {},
                    "annotations": annotations or {},
                },
            }
        )
        self.kubectl("create", "-f", "-", input=manifest)
        self.kubectl("wait", "--for=create", "serviceaccount/default", "-n", name, "--timeout=60s")
        return name

    def delete_namespace(self, name: str) -> None:
        """Start deleting namespace `name`; do not wait for its contents to go."""
        self.kubectl("delete", "namespace", name, "--wait=false", "--ignore-not-found")

    def _run(
        self, argv: list[str], input: str | None, check: bool, timeout: float
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            argv,
            input=input,
            capture_output=True,
            text=True,
            env=self.env(),
            timeout=timeout,
            check=False,
            stdin=None if input is not None else subprocess.DEVNULL,
        )
        if check and result.returncode != 0:
            raise CommandError(result.returncode, argv, result.stdout, result.stderr)
        return result
