"""The difference an apply would make: the live object against the dry-run result. Pure.

Both sides are reduced to what a person edits (spec, labels, annotations) before a unified
diff of their YAML, so server bookkeeping (resourceVersion, managedFields, status) never shows
up as a change. Called by the review step of the forms.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

import yaml

BOOKKEEPING = ("annotations", "labels")


def editable(obj: Mapping[str, Any] | None) -> dict[str, Any]:
    """The parts of `obj` a person writes: kind, name, namespace, labels, annotations, spec."""
    if not obj:
        return {}
    meta = obj.get("metadata") or {}
    kept: dict[str, Any] = {"name": meta.get("name"), "namespace": meta.get("namespace")}
    for key in BOOKKEEPING:
        values = {
            k: v
            for k, v in (meta.get(key) or {}).items()
            if k != "kubectl.kubernetes.io/last-applied-configuration"
        }
        if values:
            kept[key] = values
    out: dict[str, Any] = {
        "apiVersion": obj.get("apiVersion"),
        "kind": obj.get("kind"),
        "metadata": kept,
    }
    if "spec" in obj:
        out["spec"] = obj["spec"]
    return out


def as_yaml(obj: Mapping[str, Any] | None) -> str:
    return yaml.safe_dump(editable(obj), sort_keys=True, allow_unicode=True) if obj else ""


def unified(live: Mapping[str, Any] | None, proposed: Mapping[str, Any]) -> list[str]:
    """The unified diff lines from `live` (None: the object does not exist yet) to `proposed`;
    empty when applying would change nothing a person wrote."""
    before = as_yaml(live).splitlines()
    after = as_yaml(proposed).splitlines()
    name = (proposed.get("metadata") or {}).get("name", "object")
    return list(
        difflib.unified_diff(
            before,
            after,
            fromfile=f"live/{name}" if live else "/dev/null",
            tofile=f"applied/{name}",
            lineterm="",
        )
    )
