"""Fixtures for the operator end-to-end tests: CRDs installed, one shared operator process
watching every namespace named `<prefix>-*`, and namespaces under that prefix.

Tests that need an operator of their own (scoping, restarts, idleness) start one with
`operator_factory` on namespaces outside the shared prefix, so no two operators ever manage
the same Agent.
"""

from __future__ import annotations

import re
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from operator_e2e import Cluster, OperatorProcess, running

from localcluster import handles

pytestmark = pytest.mark.cluster
PREFIX = f"e2eop-{uuid.uuid4().hex[:6]}"
CORRAL = Path(sys.executable).with_name("corral")


@pytest.fixture(scope="session")
def crds(cluster: handles.Cluster) -> None:
    """Every Corral CRD as `corral crds` prints it, established."""
    text = subprocess.run([str(CORRAL), "crds"], check=True, capture_output=True, text=True).stdout
    cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", "-", input=text)
    plurals = ("agents", "personas", "tools", "mcpservers")
    names = [f"crd/{plural}.corral.dev" for plural in plurals]
    cluster.kubectl("wait", "--for=condition=Established", *names, "--timeout=60s")


@pytest.fixture(scope="session")
def kube(cluster: handles.Cluster, crds: None) -> Cluster:
    return Cluster(cluster)


@pytest.fixture(scope="session")
def shared_operator(
    cluster: handles.Cluster, crds: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    log = tmp_path_factory.mktemp("operator") / "shared-operator.log"
    with running(OperatorProcess(cluster, [f"{PREFIX}-*"], log)) as operator:
        yield operator


def _make_namespace(cluster: handles.Cluster, request: pytest.FixtureRequest, prefix: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:30].strip("-")
    return cluster.create_namespace(
        f"{prefix}-{slug}-{uuid.uuid4().hex[:4]}", labels={"corral.dev/test-namespace": "true"}
    )


@pytest.fixture
def watched_namespace(
    cluster: handles.Cluster, shared_operator: OperatorProcess, request: pytest.FixtureRequest
) -> Iterator[str]:
    """A fresh namespace the shared operator watches."""
    name = _make_namespace(cluster, request, PREFIX)
    yield name
    cluster.delete_namespace(name)


@pytest.fixture
def own_namespaces(
    cluster: handles.Cluster, crds: None, request: pytest.FixtureRequest
) -> Iterator[Callable[[], str]]:
    """Make namespaces no shared operator watches (for tests running their own operator)."""
    made: list[str] = []

    def make() -> str:
        made.append(_make_namespace(cluster, request, "e2eown"))
        return made[-1]

    yield make
    for name in made:
        cluster.delete_namespace(name)


@pytest.fixture
def operator_factory(
    cluster: handles.Cluster, crds: None, tmp_path: Path
) -> Iterator[Callable[[list[str]], OperatorProcess]]:
    """Start operators of one's own; all are stopped at the end of the test."""
    started: list[OperatorProcess] = []

    def start(namespaces: list[str]) -> OperatorProcess:
        operator = OperatorProcess(cluster, namespaces, tmp_path / f"operator-{len(started)}.log")
        started.append(operator)
        operator.start()
        return operator

    yield start
    for operator in started:
        operator.stop()
