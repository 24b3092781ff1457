"""Routes of the forms: new, edit, review (dry-run + diff) and apply. Thin.

`submissions` reads the form, `authoring` runs the dry-run and the apply; these functions pick
the form of the kind in the URL and render. Form bodies are read as urlencoded text (what an
HTML form posts) with the standard library. Read-only consoles (`--read-only`) answer 403.
"""

from __future__ import annotations

import json
import urllib.parse
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from corral.console import authoring, deps, fielderrors, forms, submissions

router = APIRouter(prefix="/author")


def _form(plural: str, settings: deps.SettingsDep) -> forms.Form:
    if settings.read_only:
        raise HTTPException(403, "this console is read-only (--read-only)")
    form = forms.BY_PLURAL.get(plural)
    if form is None:
        raise HTTPException(404, f"no form for {plural!r}: use agents, personas or tools")
    return form


async def _posted(request: Request) -> dict[str, str]:
    body = (await request.body()).decode("utf-8", errors="replace")
    return dict(urllib.parse.parse_qsl(body, keep_blank_values=True))


def _render_form(
    request: Request,
    templates: Jinja2Templates,
    form: forms.Form,
    values: dict[str, str],
    errors: dict[str, list[str]] | None = None,
    editing: bool = False,
) -> HTMLResponse:
    return templates.TemplateResponse(
        request,
        "form.html",
        {
            "form": form,
            "values": values,
            "errors": errors or {},
            "general": (errors or {}).get(fielderrors.GENERAL, []),
            "editing": editing,
            "nav": f"new-{form.kind.kind.lower()}" if not editing else "",
        },
        status_code=422 if errors else 200,
    )


@router.get("/{plural}/new", response_class=HTMLResponse)
async def new(
    request: Request,
    plural: str,
    kube: deps.KubeDep,
    settings: deps.SettingsDep,
    templates: deps.TemplatesDep,
) -> HTMLResponse:
    form = _form(plural, settings)
    namespace = request.query_params.get("namespace") or kube.namespace
    values = {"metadata.namespace": namespace}
    if form is forms.TOOL:
        values["spec.parameters"] = "type: object\nproperties: {}\n"
    return _render_form(request, templates, form, values)


@router.get("/{plural}/{namespace}/{name}", response_class=HTMLResponse)
async def edit(
    request: Request,
    plural: str,
    namespace: str,
    name: str,
    kube: deps.KubeDep,
    settings: deps.SettingsDep,
    templates: deps.TemplatesDep,
) -> HTMLResponse:
    form = _form(plural, settings)
    live = await kube.find(form.kind.item(namespace, name))
    if live is None:
        return templates.TemplateResponse(
            request, "notfound.html", {"what": f"{form.kind.kind} {namespace}/{name}"}, 404
        )
    return _render_form(request, templates, form, submissions.values(form, live), editing=True)


@router.post("/{plural}/review", response_class=HTMLResponse)
async def review(
    request: Request,
    plural: str,
    kube: deps.KubeDep,
    settings: deps.SettingsDep,
    templates: deps.TemplatesDep,
) -> HTMLResponse:
    form = _form(plural, settings)
    posted = await _posted(request)
    outcome = await authoring.review(kube, form, posted)
    editing = posted.get("editing") == "true"
    if not outcome.ok:
        return _render_form(request, templates, form, posted, outcome.errors, editing)
    return templates.TemplateResponse(
        request,
        "review.html",
        {
            "form": form,
            "outcome": outcome,
            "manifest_json": json.dumps(outcome.manifest),
            "editing": editing,
            "nav": "",
        },
    )


@router.post("/{plural}/apply", response_model=None)
async def apply(
    request: Request,
    plural: str,
    kube: deps.KubeDep,
    settings: deps.SettingsDep,
    templates: deps.TemplatesDep,
) -> Response:
    form = _form(plural, settings)
    posted = await _posted(request)
    try:
        manifest: Any = json.loads(posted.get("manifest", ""))
    except ValueError:
        raise HTTPException(400, "the form lost its manifest: review the change again") from None
    if not isinstance(manifest, dict) or manifest.get("kind") != form.kind.kind:
        raise HTTPException(400, f"the manifest is not a {form.kind.kind}: review it again")
    outcome = await authoring.apply(kube, form, manifest)
    if not outcome.ok:
        values = submissions.values(form, manifest)
        return _render_form(request, templates, form, values, outcome.errors, editing=True)
    meta = manifest["metadata"]
    if form is forms.AGENT:
        return RedirectResponse(f"/agents/{meta['namespace']}/{meta['name']}", status_code=303)
    query = urllib.parse.urlencode(
        {"applied": f"{form.kind.kind} {meta['namespace']}/{meta['name']}"}
    )
    return RedirectResponse(f"/?{query}", status_code=303)
