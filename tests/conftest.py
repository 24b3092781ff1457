"""Fixtures for the real components on loopback (the logic lives in hack/).

`cluster` (session): reuses the running control plane or starts one, building missing binaries
first; at the end it stops the cluster only if this session started it and no other test session
still uses it (set CORRAL_KEEP_CLUSTER=1 to keep it). `namespace`: a fresh namespace per test.
`otel_collector`: a fresh OpenTelemetry Collector per test (hack/otelcol.py).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator

import pytest

import otelcol
from localcluster import handles, output, sessions


def _uncaptured(pytestconfig: pytest.Config) -> output.Log:
    """A progress log shown as it happens, not captured: a first build takes minutes."""
    capture = pytestconfig.pluginmanager.getplugin("capturemanager")

    def log(line: str) -> None:
        if capture is None:
            output.stderr(line)
            return
        with capture.global_and_fixture_disabled():
            output.stderr(line)

    return log


@pytest.fixture(scope="session")
def cluster(pytestconfig: pytest.Config) -> Iterator[handles.Cluster]:
    with sessions.session(log=_uncaptured(pytestconfig)) as running:
        yield running


@pytest.fixture
def otel_collector(pytestconfig: pytest.Config) -> Iterator[otelcol.Collector]:
    """A collector of its own per test, so a test can assert exactly the spans it caused.

    Function scope because starting one costs a fraction of a second (the binary is built
    once per machine) and no test then has to filter out another test's traces.
    """
    with otelcol.Collector(log=_uncaptured(pytestconfig)) as collector:
        yield collector


@pytest.fixture
def namespace(cluster: handles.Cluster, request: pytest.FixtureRequest) -> Iterator[str]:
    """A new, empty namespace named after the test; deleted (without waiting) afterwards."""
    slug = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:45].strip("-")
    name = cluster.create_namespace(
        f"t-{slug}-{uuid.uuid4().hex[:6]}", labels={"corral.dev/test-namespace": "true"}
    )
    yield name
    cluster.delete_namespace(name)
