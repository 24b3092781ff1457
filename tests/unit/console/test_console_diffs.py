"""The diff shown before an apply (pure)."""

from __future__ import annotations

from typing import Any

from corral.console import diffs

LIVE: dict[str, Any] = {
    "apiVersion": "corral.dev/v1alpha1",
    "kind": "Persona",
    "metadata": {
        "name": "tone",
        "namespace": "shop",
        "resourceVersion": "41",
        "generation": 2,
        "uid": "u-1",
        "managedFields": [{"manager": "kubectl"}],
        "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{...}"},
    },
    "spec": {"systemPrompt": "Be kind."},
    "status": {"conditions": [{"type": "Ready", "status": "True"}]},
}


def dry_run(**spec: Any) -> dict[str, Any]:
    result = {**LIVE, "spec": spec}
    result["metadata"] = {**LIVE["metadata"], "resourceVersion": "42", "generation": 3}
    return result


def test_only_what_a_person_wrote_changes_in_the_diff() -> None:
    lines = diffs.unified(LIVE, dry_run(systemPrompt="Be brief."))
    changed = [line for line in lines if line[:1] in "+-" and line[:3] not in ("+++", "---")]
    assert changed == ["-  systemPrompt: Be kind.", "+  systemPrompt: Be brief."]


def test_no_change_is_an_empty_diff_despite_new_server_bookkeeping() -> None:
    assert diffs.unified(LIVE, dry_run(systemPrompt="Be kind.")) == []


def test_a_new_object_is_all_additions() -> None:
    lines = diffs.unified(None, dry_run(systemPrompt="Be kind."))
    assert lines[0] == "--- /dev/null"
    assert "+  systemPrompt: Be kind." in lines
    assert not any(line.startswith("-") and line != "--- /dev/null" for line in lines)


def test_status_and_last_applied_never_show() -> None:
    text = diffs.as_yaml(LIVE)
    assert "status" not in text
    assert "last-applied" not in text
    assert "resourceVersion" not in text
