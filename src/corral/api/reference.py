"""The field reference of every Corral kind as Markdown (`docs/reference.md`).

Generated from the same structural schemas as the CRDs, so it documents exactly what the API
server enforces: every field with its type, default, bounds and description, and every
cross-field rule with its message. `render()` is pure; `python -m corral.api.reference PATH`
writes the file (a test fails when the checked-in copy is stale).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from corral.api import crds, groups, resources, schemas

# Fields with the same shape as in a Pod: documented by a link instead of row by row.
CORE_V1 = {
    "spec.affinity": "https://kubernetes.io/docs/reference/kubernetes-api/workload-resources/"
    "pod-v1/#scheduling",
}

HEADER = f"""\
# API reference: `{groups.API_VERSION}`

<!-- Generated from src/corral/api by `python -m corral.api.reference docs/reference.md`.
     Do not edit by hand. -->

Every kind is namespaced, in the API group `{groups.GROUP}`, version `{groups.VERSION}`, and in
the category `{groups.CATEGORY}` (`kubectl get {groups.CATEGORY}` lists them all). The API server
checks every type, bound and rule below; unknown fields are dropped. Fields marked *required*
must be set; the others take the default shown, or are simply absent. `status` is written by
the operator through the status subresource.
"""


def render() -> str:
    """The whole reference document."""
    sections = [HEADER]
    for kind in resources.BY_KIND:
        sections.append(_kind_section(kind))
    return "\n".join(sections)


def _kind_section(kind: str) -> str:
    crd = crds.definition(kind)
    names = crd["spec"]["names"]
    root = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    columns = crd["spec"]["versions"][0]["additionalPrinterColumns"]
    shown = ", ".join(c["name"].upper() for c in columns if not c.get("priority"))
    wide = ", ".join(c["name"].upper() for c in columns if c.get("priority"))
    short = ", ".join(_code(name) for name in names["shortNames"])
    lines = [
        f"## {kind}",
        "",
        root.get("description", ""),
        "",
        f"`kubectl get {names['plural']}` (short name {short}) shows {shown}"
        + (f"; `-o wide` adds {wide}." if wide else "."),
        "",
    ]
    lines += _rules("", root, deep=False)
    for part in ("spec", "status"):
        schema = root["properties"][part]
        lines += [f"### {kind}.{part}", "", schema.get("description", ""), ""]
        lines += _table(_rows(part, schema))
        lines += _rules(part, schema)
    return "\n".join(lines)


def _rows(prefix: str, schema: schemas.Schema) -> list[tuple[str, str, str, str, str]]:
    """(field, type, required, default, description) for every field below `schema`."""
    rows = []
    required = set(schema.get("required", []))
    for name, sub in schema.get("properties", {}).items():
        path = f"{prefix}.{name}"
        rows.append(
            (
                _code(path),
                _type(sub),
                "required" if name in required else "",
                _code(json.dumps(sub["default"])) if "default" in sub else "",
                _describe(sub)
                + (f" Same fields as in a Pod: {CORE_V1[path]}" if path in CORE_V1 else ""),
            )
        )
        if path not in CORE_V1:
            rows += _rows(*_children(path, sub))
    return rows


def _children(path: str, schema: schemas.Schema) -> tuple[str, schemas.Schema]:
    """Where the fields nested in `schema` live: in its list items or map values, if any."""
    if schema.get("type") == "array":
        return f"{path}[]", schema["items"]
    if isinstance(schema.get("additionalProperties"), dict):
        return f"{path}.*", schema["additionalProperties"]
    return path, schema


def _type(schema: schemas.Schema) -> str:
    if schema.get("x-kubernetes-int-or-string"):
        return "int or string"
    kind = str(schema.get("type", "any"))
    if kind == "array":
        return f"list of {_type(schema['items'])}"
    if kind == "object" and isinstance(schema.get("additionalProperties"), dict):
        return f"map of {_type(schema['additionalProperties'])}"
    if kind == "object" and schema.get("x-kubernetes-preserve-unknown-fields"):
        return "object (free-form)"
    return kind


def _describe(schema: schemas.Schema) -> str:
    parts = [schema.get("description", "").strip()]
    if "enum" in schema:
        parts.append("One of: " + ", ".join(_code(str(value)) for value in schema["enum"]) + ".")
    bounds = [
        _bound(schema, "minimum", "maximum", ""),
        _bound(schema, "minLength", "maxLength", " characters"),
        _bound(schema, "minItems", "maxItems", " items"),
        _bound(schema, "minProperties", "maxProperties", " entries"),
    ]
    parts += [bound for bound in bounds if bound]
    if "pattern" in schema:
        parts.append(f"Matches {_code(schema['pattern'])}.")
    if schema.get("x-kubernetes-list-type") == "map":
        keys = ", ".join(schema.get("x-kubernetes-list-map-keys", []))
        parts.append(f"Entries are unique by {keys}.")
    if schema.get("x-kubernetes-list-type") == "set":
        parts.append("Entries are unique.")
    if not _has_fields(schema):
        parts += [
            f"Rule: {rule['message']}." for rule in schema.get("x-kubernetes-validations", [])
        ]
    return " ".join(part for part in parts if part)


def _bound(schema: schemas.Schema, low: str, high: str, unit: str) -> str:
    if low in schema and high in schema:
        return f"{schema[low]}-{schema[high]}{unit}."
    if low in schema:
        return f"At least {schema[low]}{unit}."
    if high in schema:
        return f"At most {schema[high]}{unit}."
    return ""


def _rules(path: str, schema: schemas.Schema, deep: bool = True) -> list[str]:
    """Cross-field rules: those on objects with fields (the table shows the others)."""
    found = _rule_pairs(path, schema, deep)
    if not found:
        return []
    lines = ["Rules:", ""]
    lines += [f"- {f'`{where}`: ' if where else ''}{message}." for where, message in found]
    return [*lines, ""]


def _rule_pairs(path: str, schema: schemas.Schema, deep: bool) -> list[tuple[str, str]]:
    if not _has_fields(schema):
        return []
    pairs = [(path, rule["message"]) for rule in schema.get("x-kubernetes-validations", [])]
    if deep:
        for name, sub in schema["properties"].items():
            pairs += _rule_pairs(*_children(f"{path}.{name}", sub), deep)
    return pairs


def _has_fields(schema: schemas.Schema) -> bool:
    return schema.get("type") == "object" and "properties" in schema


def _table(rows: list[tuple[str, str, str, str, str]]) -> list[str]:
    lines = ["| Field | Type | Required | Default | Description |", "|---|---|---|---|---|"]
    lines += ["| " + " | ".join(_cell(cell) for cell in row) + " |" for row in rows]
    return [*lines, ""]


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _code(text: str) -> str:
    """`text` as a Markdown code span, even when it holds backticks."""
    return f"`` {text} ``" if "`" in text else f"`{text}`"


def main(argv: list[str]) -> int:
    """Write the reference to argv[0], or print it."""
    text = render()
    if argv:
        Path(argv[0]).write_text(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
