"""A new Agent, Persona or Tool, read back from the real API server before any operator has
seen it, is InProgress for kstatus (Helm 4 --wait, Flux): the CRDs default
status.observedGeneration to 0, below the object's generation. Without that default kstatus
would call it Current and a `helm install --wait` could return before anything ran."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import kstatus
from localcluster import handles

ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = {
    "persona": ROOT / "examples" / "persona-support-tone.yaml",
    "tool": ROOT / "examples" / "tool-order-lookup.yaml",
    "agent": ROOT / "examples" / "agent-support.yaml",
}
pytestmark = pytest.mark.cluster


@pytest.mark.parametrize("kind", sorted(EXAMPLES))
def test_a_new_object_without_an_operator_is_in_progress_for_kstatus(
    cluster: handles.Cluster, namespace: str, kind: str
) -> None:
    cluster.kubectl("apply", "--server-side", "-f", str(ROOT / "crds"))
    cluster.kubectl("wait", "--for=condition=Established", "crd", "--all", "--timeout=60s")
    cluster.kubectl("apply", "--server-side", "-n", namespace, "-f", str(EXAMPLES[kind]))
    obj = json.loads(cluster.kubectl("get", kind, "-n", namespace, "-o", "json").stdout)["items"][0]
    assert obj["status"] == {"observedGeneration": 0}
    assert kstatus.compute(kstatus.ensure(), obj)["status"] == "InProgress"
