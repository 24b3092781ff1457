"""Between HTML form values and a manifest, both ways. Pure.

`manifest(form, values)` builds the object to apply from what the browser posted, with an
error per field it cannot read (a number that is not one, YAML that does not parse) before any
request is made. `values(form, obj)` fills the form from a live object; whatever the form has no
input for goes to the `OTHER` YAML textarea, so an edit never drops a field it does not show.
Called by the authoring routes.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping
from typing import Any

import yaml

from corral.console import forms


@dataclasses.dataclass(frozen=True)
class Parsed:
    """The manifest built from a form, or the fields that could not be read (path -> message)."""

    manifest: dict[str, Any]
    errors: dict[str, str]


def manifest(form: forms.Form, posted: Mapping[str, str]) -> Parsed:
    errors: dict[str, str] = {}
    spec: dict[str, Any] = {}
    obj: dict[str, Any] = {
        "apiVersion": form.kind.api_version,
        "kind": form.kind.kind,
        "metadata": {},
        "spec": spec,
    }
    other = form.field(forms.OTHER)
    if other is not None:
        try:
            rest = _yaml(posted.get(other.path, ""), dict)
        except ValueError as err:
            errors[other.path] = str(err)
        else:
            spec.update(rest or {})
    for field in form.fields:
        if field.widget == "other":
            continue
        raw = posted.get(field.path, "").replace("\r\n", "\n")
        if not raw.strip() and not field.required:
            continue
        try:
            value = _value(field, raw)
        except ValueError as err:
            errors[field.path] = str(err)
            continue
        _set(obj, field.segments, value)
    return Parsed(manifest=obj, errors=errors)


def values(form: forms.Form, obj: Mapping[str, Any] | None) -> dict[str, str]:
    """The form's values for `obj` (None: a new object, every value empty)."""
    if obj is None:
        return {}
    out: dict[str, str] = {}
    rest = copy.deepcopy(dict(obj.get("spec") or {}))
    for field in form.fields:
        if field.widget == "other":
            continue
        found = _get(obj, field.segments)
        if field.segments[0] == "spec":
            _delete(rest, field.segments[1:])
        if found is not None:
            out[field.path] = _text(field, found)
    if rest and form.field(forms.OTHER) is not None:
        out[forms.OTHER] = yaml.safe_dump(rest, sort_keys=False, allow_unicode=True)
    return out


def _value(field: forms.Field, raw: str) -> Any:
    if field.widget == "int":
        try:
            return int(raw.strip())
        except ValueError:
            raise ValueError(f"{field.label} must be a whole number, not {raw.strip()!r}") from None
    if field.widget == "float":
        try:
            return float(raw.strip())
        except ValueError:
            raise ValueError(f"{field.label} must be a number, not {raw.strip()!r}") from None
    if field.widget == "yaml":
        return _yaml(raw, None)
    if field.widget == "refs":
        names = [n.strip() for n in raw.replace("\n", ",").split(",")]
        return [{"name": n} for n in names if n]
    if field.widget == "textarea":
        return raw
    return raw.strip()


def _yaml(raw: str, expected: type | None) -> Any:
    if not raw.strip():
        return None
    try:
        parsed = yaml.safe_load(raw)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise ValueError(f"not valid YAML{where}: {getattr(err, 'problem', err)}") from None
    if expected is dict and not isinstance(parsed, dict):
        raise ValueError("must be YAML mapping fields to values, e.g. `memory: {enabled: true}`")
    return parsed


def _text(field: forms.Field, value: Any) -> str:
    if field.widget == "refs" and isinstance(value, list):
        return ", ".join(str(v.get("name", "")) for v in value if isinstance(v, dict))
    if field.widget == "yaml":
        return yaml.safe_dump(value, sort_keys=False, allow_unicode=True)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _get(obj: Mapping[str, Any], segments: tuple[str, ...]) -> Any:
    current: Any = obj
    for segment in segments:
        if not isinstance(current, Mapping) or segment not in current:
            return None
        current = current[segment]
    return current


def _set(obj: dict[str, Any], segments: tuple[str, ...], value: Any) -> None:
    current = obj
    for segment in segments[:-1]:
        child = current.get(segment)
        if not isinstance(child, dict):
            child = current[segment] = {}
        current = child
    current[segments[-1]] = value


def _delete(obj: dict[str, Any], segments: tuple[str, ...]) -> None:
    """Remove the value at `segments`, and the mappings it leaves empty."""
    if not segments:
        return
    head, rest = segments[0], segments[1:]
    if head not in obj:
        return
    if not rest:
        del obj[head]
        return
    child = obj[head]
    if isinstance(child, dict):
        _delete(child, rest)
        if not child:
            del obj[head]
