"""Fixtures for the API tests: the generated CRDs installed on the shared local cluster.

The CRDs are applied from the generator's output with server-side apply (idempotent, and other
engineers' sessions install the same objects), and never deleted: other sessions may use them.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from api_kubectl import Api

from corral.api import crds
from localcluster import handles


@pytest.fixture(scope="session")
def corral_crds(cluster: handles.Cluster) -> list[str]:
    """Install the CRDs exactly as `corral crds` prints them; return their names."""
    definitions = crds.definitions()
    cluster.kubectl(
        "apply",
        "--server-side",
        "--force-conflicts",
        "--field-manager=corral-crds",
        "-f",
        "-",
        input="".join(f"---\n{crds.to_yaml(crd)}" for crd in definitions),
    )
    names = [crd["metadata"]["name"] for crd in definitions]
    cluster.kubectl(
        "wait", "--for=condition=Established", *[f"crd/{name}" for name in names], "--timeout=60s"
    )
    return names


@pytest.fixture
def api(cluster: handles.Cluster, corral_crds: list[str], namespace: str) -> Api:
    """kubectl bound to a fresh namespace, with the Corral CRDs installed."""
    return Api(cluster, namespace)


@pytest.fixture(scope="module")
def module_namespace(cluster: handles.Cluster, request: pytest.FixtureRequest) -> Iterator[str]:
    """One namespace for a module's many short-lived checks (e.g. a table of rejections)."""
    stem = request.module.__name__.rsplit(".", 1)[-1].replace("_", "-")[:40]
    name = cluster.create_namespace(
        f"t-{stem}-{uuid.uuid4().hex[:6]}", labels={"corral.dev/test-namespace": "true"}
    )
    yield name
    cluster.delete_namespace(name)
