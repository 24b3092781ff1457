"""Create and edit with a server-side dry-run first, then apply as `corral-console`. Does I/O.

`review` builds the manifest from the posted form, asks the API server to apply it with
`dryRun=All` (so every admission step, schema and CEL rule runs and nothing is stored), and
returns either the messages placed next to the form fields they name or the diff between the
live object and the dry-run result. `apply` then applies the same manifest for real. An edit
the API server rejects therefore changes nothing. Called by the authoring routes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from corral.console import diffs, fielderrors, forms, kube, submissions


@dataclasses.dataclass(frozen=True)
class Outcome:
    """A dry-run's result: `errors` (field path -> messages) or the change it would make."""

    manifest: dict[str, Any]
    errors: dict[str, list[str]]
    live: dict[str, Any] | None = None
    diff: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.errors


def path_of(form: forms.Form, manifest: Mapping[str, Any]) -> str:
    meta = manifest.get("metadata") or {}
    return form.kind.item(str(meta.get("namespace", "")), str(meta.get("name", "")))


def missing_identity(manifest: Mapping[str, Any]) -> dict[str, list[str]]:
    """Name and namespace are part of the URL: they must be there before any request."""
    meta = manifest.get("metadata") or {}
    return {
        f"metadata.{key}": [f"a {key} is required"]
        for key in ("name", "namespace")
        if not str(meta.get(key) or "").strip()
    }


async def review(client: kube.Kube, form: forms.Form, posted: Mapping[str, str]) -> Outcome:
    parsed = submissions.manifest(form, posted)
    errors = {path: [message] for path, message in parsed.errors.items()}
    errors |= missing_identity(parsed.manifest)
    if errors:
        return Outcome(parsed.manifest, errors)
    return await dry_run(client, form, parsed.manifest)


async def dry_run(client: kube.Kube, form: forms.Form, manifest: dict[str, Any]) -> Outcome:
    path = path_of(form, manifest)
    try:
        live = await client.find(path)
        result = await client.apply(manifest, path, dry_run=True)
    except kube.KubeError as err:
        return Outcome(manifest, rejected(form, err))
    return Outcome(manifest, {}, live, tuple(diffs.unified(live, result)))


async def apply(client: kube.Kube, form: forms.Form, manifest: dict[str, Any]) -> Outcome:
    """Apply `manifest` for real (after a review); errors as in `review` if it is rejected now."""
    errors = missing_identity(manifest)
    if errors:
        return Outcome(manifest, errors)
    try:
        await client.apply(manifest, path_of(form, manifest), dry_run=False)
    except kube.KubeError as err:
        return Outcome(manifest, rejected(form, err))
    return Outcome(manifest, {})


def rejected(form: forms.Form, err: kube.KubeError) -> dict[str, list[str]]:
    """The API server's rejection as messages per form field (GENERAL for the rest)."""
    if err.forbidden or err.status in (0, 401):
        return {fielderrors.GENERAL: [err.message]}
    return fielderrors.place(form, err.message, ((c.field, c.message) for c in err.causes))
