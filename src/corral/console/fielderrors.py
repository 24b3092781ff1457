"""Which form field an API server message is about. Pure.

A rejected dry-run answers a Status whose `details.causes[].field` names a wire path
(`spec.model.temperature`, `spec.tools[0].name`, `.spec.http.url`); some rejections (a patch
of the wrong type) name it only inside the message. `place` maps each to the form field whose
path is the longest prefix of it, a spec field the form has no input for to the `OTHER`
textarea, and anything else to the top of the form (`GENERAL`). Called by the authoring routes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final

from corral.console import forms

GENERAL: Final = ""
_INDEX = re.compile(r"\[[^\]]*\]")
_PATH_IN_MESSAGE = re.compile(r"(?<![\w.])\.?((?:spec|metadata)(?:\.[A-Za-z0-9_]+|\[[^\]]*\])+)")


def normalize(field: str) -> str:
    """`.spec.tools[0].name` -> `spec.tools.name` (list indexes do not name form fields)."""
    return _INDEX.sub("", field.strip()).lstrip(".")


def field_for(form: forms.Form, cause_field: str) -> str:
    """The path of the form field `cause_field` is about, or GENERAL."""
    wanted = normalize(cause_field).split(".")
    best, best_length = GENERAL, 0
    for field in form.fields:
        if field.widget == "other":
            continue
        segments = list(field.segments)
        if wanted[: len(segments)] == segments and len(segments) > best_length:
            best, best_length = field.path, len(segments)
    under_spec = len(wanted) > 1 and wanted[0] == "spec"
    if best == GENERAL and under_spec and form.field(forms.OTHER) is not None:
        return forms.OTHER
    return best


def path_in(message: str) -> str | None:
    """The first wire path a message names (`.spec.replicas: expected numeric ...`), if any."""
    found = _PATH_IN_MESSAGE.search(message)
    return found.group(1) if found else None


def place(
    form: forms.Form, message: str, causes: Iterable[tuple[str, str]]
) -> dict[str, list[str]]:
    """Form field path -> the messages to show next to it (GENERAL: above the form).

    `causes` are (field, message) pairs of the Status; without any, the message itself is
    placed by the path it names."""
    placed: dict[str, list[str]] = {}
    causes = list(causes)
    if not causes:
        named = path_in(message)
        causes = [(named or "", message)]
    for field, text in causes:
        where = field_for(form, field) if field else GENERAL
        shown = text if not field or field in text else f"{normalize(field)}: {text}"
        placed.setdefault(where, []).append(shown)
    return placed
