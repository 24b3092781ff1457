"""`corral console` as a real process against the local control plane, for browser tests.

Does I/O: spawns `corral console --kubeconfig K --port P` (output to a log file) and waits for
its /healthz; makes ServiceAccount kubeconfigs restricted by a Role to chosen namespaces (the
RBAC tests); launches the headless browser. Used by the fixtures of conftest.py here and of
tests/e2e/pods, and by `make screenshots`.
"""

from __future__ import annotations

import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import yaml
from playwright.sync_api import Browser, Playwright

import browser as system_browser
import serviceaccounts
from e2e.operator.operator_e2e import free_port, terminate, wait_for
from localcluster import handles

CORRAL = Path(sys.executable).with_name("corral")
READER_RULES: list[dict[str, Any]] = [
    {
        "apiGroups": ["corral.dev"],
        "resources": ["agents", "personas", "tools", "mcpservers"],
        "verbs": ["get", "list", "watch"],
    },
    {"apiGroups": [""], "resources": ["events", "pods"], "verbs": ["get", "list"]},
    {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get", "list"]},
]


def launch(driver: Playwright) -> Browser:
    """Debian's Chromium, headless (root needs --no-sandbox; /dev/shm may be small)."""
    return driver.chromium.launch(
        executable_path=str(system_browser.install()),
        headless=True,
        args=["--no-sandbox", "--disable-dev-shm-usage"],
    )


class ConsoleProcess:
    """`corral console` on a free loopback port with the given kubeconfig (None: none passed,
    the console finds credentials itself from `env`)."""

    def __init__(
        self,
        kubeconfig: Path | None,
        log_file: Path,
        args: tuple[str, ...] = (),
        env: dict[str, str] | None = None,
    ) -> None:
        self.kubeconfig = kubeconfig
        self.log_file = log_file
        self.args = args
        self.env = env
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ConsoleProcess:
        argv = [str(CORRAL), "console", "--port", str(self.port), *self.args]
        if self.kubeconfig is not None:
            argv += ["--kubeconfig", str(self.kubeconfig)]
        with open(self.log_file, "ab") as log:
            self.process = subprocess.Popen(
                argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=self.env
            )
        wait_for(f"corral console on port {self.port}", self.alive, 60, self.log_tail)
        return self

    def stop(self) -> None:
        if self.process is not None:
            terminate(self.process)
        self.process = None

    def alive(self) -> bool:
        if self.process is None or self.process.poll() is not None:
            raise AssertionError(f"corral console exited\n{self.log_tail()}")
        try:
            with urllib.request.urlopen(f"{self.url}/healthz", timeout=2) as response:
                return int(response.status) == 200
        except OSError:
            return False

    def log_tail(self, lines: int = 40) -> str:
        text = self.log_file.read_text(errors="replace") if self.log_file.exists() else ""
        return "console log (end):\n" + "\n".join(text.splitlines()[-lines:])


def reader_kubeconfig(
    cluster: handles.Cluster, home: str, readable: list[str], name: str, path: Path
) -> Path:
    """A kubeconfig for ServiceAccount `home/name` that may read Corral objects (and their
    Events, Deployments, pods) in `readable` only, with `home` as its context's namespace."""
    cluster.kubectl("create", "serviceaccount", name, "-n", home)
    subject = {"kind": "ServiceAccount", "name": name, "namespace": home}
    for namespace in readable:
        role = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role"}
        role["metadata"] = {"name": name, "namespace": namespace}
        role["rules"] = READER_RULES
        binding: dict[str, Any] = {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": name, "namespace": namespace},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
            "subjects": [subject],
        }
        cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump_all([role, binding]))
    return serviceaccounts.kubeconfig(cluster, home, name, path)
