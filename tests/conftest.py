"""Fixtures for the local Kubernetes control plane (the logic lives in hack/localcluster).

`cluster` (session): reuses the running control plane or starts one, building missing binaries
first; at the end it stops the cluster only if this session started it and no other test session
still uses it (set CORRAL_KEEP_CLUSTER=1 to keep it). `namespace`: a fresh namespace per test.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator

import pytest

from localcluster import handles, output, sessions


@pytest.fixture(scope="session")
def cluster(pytestconfig: pytest.Config) -> Iterator[handles.Cluster]:
    capture = pytestconfig.pluginmanager.getplugin("capturemanager")

    def log(line: str) -> None:
        # Shown as it happens, not captured: a first build takes tens of minutes.
        if capture is None:
            output.stderr(line)
            return
        with capture.global_and_fixture_disabled():
            output.stderr(line)

    with sessions.session(log=log) as running:
        yield running


@pytest.fixture
def namespace(cluster: handles.Cluster, request: pytest.FixtureRequest) -> Iterator[str]:
    """A new, empty namespace named after the test; deleted (without waiting) afterwards."""
    slug = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:45].strip("-")
    name = cluster.create_namespace(
        f"t-{slug}-{uuid.uuid4().hex[:6]}", labels={"corral.dev/test-namespace": "true"}
    )
    yield name
    cluster.delete_namespace(name)
