"""The operator under benchmark and the cluster plumbing around it.

`cluster_session()` yields the shared local control plane (started if needed, never torn down
while other sessions use it; see hack/localcluster). `OperatorRun` is `corral operator -n NS`
started against a kubeconfig (the counting proxy's), with its liveness and metrics ports;
it reports when it is alive, its reconcile count, CPU seconds and RSS. `kubectl(...)` applies
YAML documents. Called by `operator_suite`; process, file and network I/O.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from bench import procs, runtimes

# hack/ holds the local control plane's code (hack/localcluster); pytest puts it on the path.
sys.path.insert(0, str(runtimes.REPO / "hack"))

from localcluster import handles, sessions

CORRAL = Path(sys.executable).with_name("corral")
IMAGE = "registry.bench/corral:bench"
RECONCILES = re.compile(r"^corral_operator_reconciles_total\{([^}]*)\} (\S+)$", re.MULTILINE)


@contextmanager
def cluster_session() -> Iterator[handles.Cluster]:
    with sessions.session(log=lambda line: print(f"bench: {line}", file=sys.stderr)) as cluster:
        yield cluster


def install_crds(cluster: handles.Cluster) -> None:
    text = subprocess.run([str(CORRAL), "crds"], check=True, capture_output=True, text=True).stdout
    cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", "-", input=text)
    names = [f"crd/{plural}.corral.dev" for plural in ("agents", "personas", "tools")]
    cluster.kubectl("wait", "--for=condition=Established", *names, "--timeout=60s")


def apply(
    cluster: handles.Cluster,
    docs: list[dict[str, Any]],
    *,
    namespace: str | None = None,
    kubeconfig: Path | None = None,
    manager: str = "kubectl",
) -> None:
    """`kubectl apply --server-side` of the documents (through `kubeconfig` when given)."""
    argv = ["apply", "--server-side", "--force-conflicts", f"--field-manager={manager}"]
    if namespace is not None:
        argv += ["-n", namespace]
    if kubeconfig is not None:
        argv = [f"--kubeconfig={kubeconfig}", *argv]
    cluster.kubectl(*argv, "-f", "-", input=yaml.safe_dump_all(docs), timeout=900)


def render(docs: list[dict[str, Any]], workdir: Path) -> list[dict[str, Any]]:
    """What `corral render` prints for the documents: the operator's own pure renderers."""
    source = workdir / "fleet.yaml"
    source.write_text(yaml.safe_dump_all(docs))
    done = subprocess.run(
        [str(CORRAL), "render", "-f", str(source), "--image", IMAGE],
        check=True,
        capture_output=True,
        text=True,
    )
    return [d for d in yaml.safe_load_all(done.stdout) if d]


class OperatorRun:
    """One `corral operator` process (use as a context manager)."""

    def __init__(
        self, namespace: str, kubeconfig: Path, log: Path, drift_seconds: float | None = None
    ) -> None:
        self.liveness_port = procs.free_port()
        self.metrics_port = procs.free_port()
        drift = (
            {} if drift_seconds is None else {"CORRAL_DRIFT_INTERVAL_SECONDS": str(drift_seconds)}
        )
        env = runtimes.child_env(
            KUBECONFIG=str(kubeconfig),
            CORRAL_LISTEN_HOST="127.0.0.1",
            CORRAL_IMAGE=IMAGE,
            CORRAL_REPORTING_INSTANCE="bench",
            **drift,
        )
        argv = [str(CORRAL), "operator", "-n", namespace]
        argv += ["--liveness-port", str(self.liveness_port)]
        argv += ["--metrics-port", str(self.metrics_port)]
        self.started = time.monotonic()
        self.proc = procs.Proc(argv, log, env=env, port=self.liveness_port)
        self.alive_after = self._wait_alive(log) - self.started

    def _wait_alive(self, log: Path) -> float:
        deadline = time.monotonic() + 120
        url = f"http://127.0.0.1:{self.liveness_port}/healthz"
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(url, timeout=5) as answer:
                    if answer.status == 200:
                        return time.monotonic()
            except OSError:
                pass
            time.sleep(0.05)
        raise procs.BenchError(f"the operator's liveness never answered 200; see {log}")

    def reconciles(self, kind: str = "Agent") -> float:
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=10) as answer:
            text = answer.read().decode()
        return sum(
            float(value) for labels, value in RECONCILES.findall(text) if f'kind="{kind}"' in labels
        )

    def wait_reconciled(self, count: int, timeout: float) -> float:
        """time.monotonic() once `count` Agent reconciles have finished in this process."""
        deadline = time.monotonic() + timeout
        while True:
            done = self.reconciles()
            if done >= count:
                return time.monotonic()
            if time.monotonic() > deadline:
                raise procs.BenchError(
                    f"the operator finished {done:.0f} of {count} Agent reconciles in"
                    f" {timeout:.0f}s; see {self.proc.log}"
                )
            time.sleep(0.1)

    def __enter__(self) -> OperatorRun:
        return self

    def __exit__(self, *exc: object) -> None:
        self.proc.stop()
