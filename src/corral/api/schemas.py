"""Pydantic JSON Schema -> Kubernetes structural OpenAPI v3 schema. Pure, no I/O.

Called by `corral.api.crds` for each kind's spec and status. Kubernetes accepts only a subset of
JSON Schema in a CRD (a "structural" schema: every node typed, no `$ref`, no unions except
int-or-string), so this inlines `$defs`, drops `null` from `anyOf[X, null]` (an optional field is
simply not required), keeps the validation keywords the API server understands and refuses
anything else: a keyword that would be silently lost is a bug in a model, not in the CRD.
"""

from __future__ import annotations

import copy
from typing import Any

from pydantic import BaseModel

Schema = dict[str, Any]

# Keywords copied as they are (after their values are converted where they hold schemas).
KEPT = frozenset(
    {
        "type",
        "description",
        "default",
        "enum",
        "format",
        "pattern",
        "minimum",
        "maximum",
        "minLength",
        "maxLength",
        "minItems",
        "maxItems",
        "minProperties",
        "maxProperties",
        "required",
        "properties",
        "items",
        "additionalProperties",
    }
)
DROPPED = frozenset({"title"})
INT_OR_STRING = "x-kubernetes-int-or-string"
PRESERVE = "x-kubernetes-preserve-unknown-fields"


class NotStructural(ValueError):
    """A model uses a JSON Schema construct that a CRD schema cannot express."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path or '<root>'}: {problem}")


def from_model(model: type[BaseModel]) -> Schema:
    """The structural schema of `model` on the wire (camelCase aliases, input defaults)."""
    return convert(model.model_json_schema(by_alias=True, mode="validation"))


def convert(schema: Schema) -> Schema:
    """Convert a JSON Schema with `$defs` (as pydantic emits it) to a structural schema."""
    definitions = schema.get("$defs", {})
    root = {key: value for key, value in schema.items() if key != "$defs"}
    return _node(root, definitions, path="", seen=())


def _node(schema: Schema, definitions: Schema, path: str, seen: tuple[str, ...]) -> Schema:
    schema, inlined = _resolve(schema, definitions, path, seen)
    seen = (*seen, *inlined)
    if "const" in schema:
        schema.setdefault("enum", [schema.pop("const")])
    out: Schema = {}
    for key, value in schema.items():
        if key in DROPPED or (key == "default" and value is None):
            continue
        if key == "properties":
            out[key] = {
                name: _node(sub, definitions, f"{path}.{name}", seen) for name, sub in value.items()
            }
        elif key == "items":
            out[key] = _node(value, definitions, f"{path}[]", seen)
        elif key == "additionalProperties":
            if value is False:
                continue  # extra="forbid": the API server prunes unknown fields instead
            if not isinstance(value, dict):
                raise NotStructural(
                    path, "free-form maps need x-kubernetes-preserve-unknown-fields"
                )
            out[key] = _node(value, definitions, f"{path}.*", seen)
        elif key == "anyOf":
            out[key] = _int_or_string(schema, path)
        elif key in ("exclusiveMinimum", "exclusiveMaximum"):
            bound = "minimum" if key == "exclusiveMinimum" else "maximum"
            out[bound] = value
            out[key] = True
        elif key in KEPT or key.startswith("x-kubernetes-"):
            out[key] = copy.deepcopy(value)
        else:
            raise NotStructural(path, f"JSON Schema keyword {key!r} has no CRD equivalent")
    if "type" not in out and not out.get(INT_OR_STRING) and not out.get(PRESERVE):
        raise NotStructural(path, "every node of a structural schema needs a type")
    if out.get("type") == "object" and "properties" in out and "additionalProperties" in out:
        raise NotStructural(path, "an object has either properties or additionalProperties")
    return out


def _resolve(
    schema: Schema, definitions: Schema, path: str, seen: tuple[str, ...]
) -> tuple[Schema, tuple[str, ...]]:
    """Inline `$ref` and single-element `allOf`, and drop `null` from `anyOf`, until none is
    left; the outer keywords (a field's description, default) win over the inlined ones.

    Returns the schema and the names of the definitions inlined, to detect recursion below.
    """
    schema = dict(schema)
    inlined: list[str] = []
    while True:
        outer = {key: value for key, value in schema.items() if key not in ("anyOf", "allOf")}
        non_null = [option for option in schema.get("anyOf", []) if option.get("type") != "null"]
        if "anyOf" in schema and len(non_null) == 1:
            schema = {**non_null[0], **outer}
        elif "anyOf" in schema and len(non_null) < len(schema["anyOf"]):
            schema = {**outer, "anyOf": non_null}
        elif len(schema.get("allOf", [])) == 1:
            schema = {**schema["allOf"][0], **outer}
        elif "$ref" in schema:
            name = schema.pop("$ref").removeprefix("#/$defs/")
            if name in seen or name in inlined:
                raise NotStructural(path, f"{name} refers to itself; CRD schemas cannot recurse")
            if name not in definitions:
                raise NotStructural(path, f"unknown reference {name}")
            inlined.append(name)
            schema = {**copy.deepcopy(definitions[name]), **schema}
        else:
            break
    if "allOf" in schema:
        raise NotStructural(path, "allOf with several schemas")
    return schema, tuple(inlined)


def _int_or_string(schema: Schema, path: str) -> list[Schema]:
    """The one union a structural schema allows: x-kubernetes-int-or-string."""
    types = sorted(option.get("type", "") for option in schema["anyOf"])
    if not schema.get(INT_OR_STRING) or types != ["integer", "string"]:
        raise NotStructural(path, "unions other than int-or-string are not structural")
    return [{"type": "integer"}, {"type": "string"}]
