"""Helpers for the chat tests on real pods: an Agent whose scripted model calls a Tool, the
`corral` command as a real process (piped or on a pseudo-terminal), and kubeconfigs for users
with less RBAC. Does I/O."""

from __future__ import annotations

import dataclasses
import os
import pty
import select
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import yaml
from pods_e2e import API, PodModel, agent

import serviceaccounts
from fakes import scripts
from fakes.serving import RecordedRequest
from localcluster import handles

CORRAL = Path(sys.executable).with_name("corral")
ANSWER = "The upstream lists its models; all is well."
TOOL = "list-models"


def scripted(request: RecordedRequest) -> scripts.Reply:
    """Call the Tool first; answer once its result is back, word by word with a pause between
    words, so that a reader who buffered the answer would never show a part of it."""
    if any(m["role"] == "tool" for m in request.body["messages"]):
        return scripts.text(ANSWER, usage=(42, 9), chunk_delay=0.2)
    return scripts.tool_calls(scripts.call(TOOL, {}))


def tool_agent(name: str, model: PodModel) -> list[dict[str, Any]]:
    """An Agent with one HTTP Tool that GETs the fake model server's own /v1/models (reachable
    from pods at the node's bridge address, like the model)."""
    tool = {
        "apiVersion": API,
        "kind": "Tool",
        "metadata": {"name": TOOL},
        "spec": {
            "description": "List the upstream's models.",
            "parameters": {"type": "object", "properties": {}},
            "http": {"url": f"{model.base_url}/models", "method": "GET"},
        },
    }
    return [tool, agent(name, model.base_url, model="scripted-model", tools=[{"name": TOOL}])]


@dataclasses.dataclass(frozen=True)
class Finished:
    returncode: int
    stdout: str
    stderr: str


def corral(kubeconfig: Path, *argv: str, stdin: str = "", timeout: int = 120) -> Finished:
    """`corral ARGV...` with this kubeconfig, stdin piped."""
    done = subprocess.run(
        [str(CORRAL), *argv], input=stdin, capture_output=True, text=True, timeout=timeout,
        env={**os.environ, "KUBECONFIG": str(kubeconfig)},
    )  # fmt: skip
    return Finished(done.returncode, done.stdout, done.stderr)


class Terminal:
    """`corral ARGV...` on a pseudo-terminal, as a person runs it."""

    def __init__(self, kubeconfig: Path, argv: Sequence[str]) -> None:
        self._fd, child = pty.openpty()
        self.process = subprocess.Popen(
            [str(CORRAL), *argv], stdin=child, stdout=child, stderr=child, close_fds=True,
            env={**os.environ, "KUBECONFIG": str(kubeconfig), "TERM": "dumb"},
        )  # fmt: skip
        os.close(child)
        self.screen = ""
        self._seen = 0  # where the next read_until starts looking

    def read_until(self, text: str, timeout: float = 120) -> str:
        """What the terminal shows once `text` appeared (after the previous match);
        AssertionError with the screen when the process ends or `timeout` passes first."""
        while text not in self.screen[self._seen :]:
            ready, _, _ = select.select([self._fd], [], [], timeout)
            if not ready:
                raise AssertionError(f"{text!r} never appeared; the terminal shows:\n{self.screen}")
            try:
                data = os.read(self._fd, 4096)
            except OSError:  # the process ended and closed the terminal
                data = b""
            if not data:
                raise AssertionError(f"{text!r} never appeared before exit:\n{self.screen}")
            self.screen += data.decode(errors="replace").replace("\r\n", "\n")
        self._seen = self.screen.index(text, self._seen) + len(text)
        return self.screen

    def type(self, text: str) -> None:
        os.write(self._fd, text.encode())

    def close(self) -> int:
        try:
            return self.process.wait(timeout=60)
        finally:
            os.close(self._fd)


def limited_kubeconfig(
    cluster: handles.Cluster, namespace: str, name: str, rules: list[dict[str, Any]], path: Path
) -> Path:
    """A kubeconfig for a new ServiceAccount allowed exactly `rules` in `namespace`."""
    objects: list[dict[str, Any]] = [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name}},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": name},
            "rules": rules,
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
            "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": namespace}],
        },
    ]
    cluster.kubectl(
        "apply", "--server-side", "-n", namespace, "-f", "-", input=yaml.safe_dump_all(objects)
    )
    return serviceaccounts.kubeconfig(cluster, namespace, name, path, hours=1)


def lines(text: str) -> Iterator[str]:
    yield from (line.strip() for line in text.splitlines() if line.strip())
