"""docs/reference.md: generated from the models, complete, and not stale."""

from __future__ import annotations

from pathlib import Path

from test_api_crds import nodes

from corral.api import crds, reference

ROOT = Path(__file__).resolve().parents[3]


def test_checked_in_reference_matches_the_generator() -> None:
    on_disk = (ROOT / "docs" / "reference.md").read_text()

    assert on_disk == reference.render(), (
        "docs/reference.md is stale; regenerate with:"
        " .venv/bin/python -m corral.api.reference docs/reference.md"
    )


def test_reference_documents_every_field_of_every_kind() -> None:
    text = reference.render()
    missing = []
    for crd in crds.definitions():
        kind = crd["spec"]["names"]["kind"]
        schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
        for part in ("spec", "status"):
            for path, _ in nodes(part, schema["properties"][part]):
                if path == part or path.endswith((".*", "[]")):
                    continue
                if any(path.startswith(f"{linked}.") for linked in reference.CORE_V1):
                    continue
                if f"`{path}`" not in text:
                    missing.append(f"{kind} {path}")

    assert missing == []


def test_reference_lists_every_cross_field_rule_message() -> None:
    text = reference.render()
    messages = [
        rule["message"]
        for crd in crds.definitions()
        for _, node in nodes("", crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"])
        for rule in node.get("x-kubernetes-validations", [])
    ]

    assert messages
    for message in messages:
        assert message in text
