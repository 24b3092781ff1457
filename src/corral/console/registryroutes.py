"""Routes of the registry: the page (`/`) and its live stream (`/events`). Thin.

Listing is `listing`'s, rows are `rows`', the stream is `watching`'s; these functions only
read the query, call them and render.
"""

from __future__ import annotations

import datetime

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, StreamingResponse
from fastapi.templating import Jinja2Templates

from corral.console import deps, kinds, listing, rows, watching

router = APIRouter()


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def row_renderer(templates: Jinja2Templates) -> watching.Render:
    macro = templates.env.get_template("_rows.html").module.row  # type: ignore[attr-defined]

    def render(r: rows.Row) -> str:
        return str(macro(r))

    return render


@router.get("/", response_class=HTMLResponse)
async def registry(
    request: Request, kube: deps.KubeDep, settings: deps.SettingsDep, templates: deps.TemplatesDep
) -> HTMLResponse:
    filters = rows.Filters.from_query(request.query_params)
    listings = await listing.list_all(kube, kinds.REGISTRY, settings.namespaces)
    at = now()
    every = [rows.row(obj, at) for lst in listings for obj in lst.objects]
    shown = sorted(
        (r for r in every if r.kind in {k.kind for k in filters.kinds()} and filters.matches(r)),
        key=rows.sort_key,
    )
    return templates.TemplateResponse(
        request,
        "registry.html",
        {
            "nav": "registry",
            "rows": shown,
            "total": len(every),
            "filters": filters,
            "kinds": kinds.REGISTRY,
            "namespaces": sorted({r.namespace for r in every} | {kube.namespace}),
            "notice": listing.notice(listings),
            "default_namespace": kube.namespace,
            "applied": request.query_params.get("applied", ""),
        },
    )


@router.get("/events")
async def events(
    request: Request, kube: deps.KubeDep, settings: deps.SettingsDep, templates: deps.TemplatesDep
) -> StreamingResponse:
    filters = rows.Filters.from_query(request.query_params)
    listings = await listing.list_all(kube, filters.kinds(), settings.namespaces)
    view = watching.View(filters, row_renderer(templates), now)
    return StreamingResponse(
        watching.stream(kube, listings, view),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
