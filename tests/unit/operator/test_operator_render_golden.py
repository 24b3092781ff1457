"""Golden tests: `corral render` output for a full-featured and a minimal Agent.

The renderers are pure, so the output is byte-stable. To accept an intended change, run
`CORRAL_UPDATE_GOLDEN=1 .venv/bin/pytest tests/unit/operator` and review the diff.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import yaml

from corral.operator import offline

GOLDEN = Path(__file__).parent / "golden"
IMAGE = "registry.test/corral:1.2.3"


def render(*paths: Path) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = offline.run(list(paths), image=IMAGE, out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def test_render_output_matches_the_golden_file() -> None:
    code, out, err = render(GOLDEN / "manifests.yaml")
    assert code == 0, err
    golden = GOLDEN / "render.yaml"
    if os.environ.get("CORRAL_UPDATE_GOLDEN"):
        golden.write_text(out)
    assert out == golden.read_text()


def test_render_is_deterministic_across_runs() -> None:
    assert render(GOLDEN / "manifests.yaml")[1] == render(GOLDEN / "manifests.yaml")[1]


def test_golden_output_is_valid_multi_document_yaml_of_the_expected_objects() -> None:
    docs = list(yaml.safe_load_all((GOLDEN / "render.yaml").read_text()))
    kinds = [(d["kind"], d["metadata"]["name"]) for d in docs]
    assert kinds == [
        ("ConfigMap", "billing-runtime"),
        ("Service", "billing"),
        ("Deployment", "billing"),
        ("ConfigMap", "support-runtime"),
        ("Service", "support"),
        ("Deployment", "support"),
        ("PodDisruptionBudget", "support"),
    ]


def test_no_secret_value_appears_anywhere_in_the_rendered_objects() -> None:
    out = render(GOLDEN / "manifests.yaml")[1]
    for value in ("sk-test-not-a-real-key", "Z2VtaW5pLXRlc3Q=", "gemini-test", "client-a", "t0k3n"):
        assert value not in out
