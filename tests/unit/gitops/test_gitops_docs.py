"""The manifests shown in docs/gitops.md parse, and each is a Kubernetes object or a Component."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

DOC = Path(__file__).resolve().parents[3] / "docs" / "gitops.md"


def test_every_yaml_example_in_the_gitops_docs_is_a_kubernetes_object() -> None:
    blocks = re.findall(r"^```yaml\n(.*?)^```$", DOC.read_text(), re.MULTILINE | re.DOTALL)
    assert len(blocks) >= 4, "docs/gitops.md lost its Argo CD / Flux examples"
    for block in blocks:
        for doc in yaml.safe_load_all(block):
            assert isinstance(doc, dict), block
            assert {"apiVersion", "kind"} <= doc.keys(), doc
            if doc["kind"] not in ("Kustomization", "Component"):
                assert doc["metadata"]["name"], doc
