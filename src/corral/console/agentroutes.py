"""Routes of an Agent's page: `/agents/{namespace}/{name}` and its metrics fragment. Thin.

The page is gathered by `details`; the metrics snapshot, which waits on the pods, is fetched by
the page after it has loaded so a slow pod never delays the rest.
"""

from __future__ import annotations

import datetime

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from corral.console import deps, details

router = APIRouter()


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


@router.get("/agents/{namespace}/{name}", response_class=HTMLResponse)
async def agent_page(
    request: Request, namespace: str, name: str, kube: deps.KubeDep, templates: deps.TemplatesDep
) -> HTMLResponse:
    detail = await details.agent_detail(kube, namespace, name, now())
    if detail is None:
        return templates.TemplateResponse(
            request,
            "notfound.html",
            {"what": f"Agent {namespace}/{name}", "nav": "registry"},
            status_code=404,
        )
    return templates.TemplateResponse(
        request, "agent.html", {"d": detail, "namespace": namespace, "name": name, "nav": ""}
    )


@router.get("/agents/{namespace}/{name}/metrics", response_class=HTMLResponse)
async def agent_metrics(
    request: Request, namespace: str, name: str, kube: deps.KubeDep, templates: deps.TemplatesDep
) -> HTMLResponse:
    metrics = await details.agent_metrics(kube, namespace, name, now())
    return templates.TemplateResponse(request, "_metrics.html", {"m": metrics})
