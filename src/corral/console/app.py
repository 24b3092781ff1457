"""The console's FastAPI application: `create_app(settings)`.

Called by `main.run` (and by tests with settings of their own). The lifespan creates the one
kube client with the user's credentials and closes it at shutdown; routers are thin and call
the plain modules of this package. Pages are rendered on the server from `templates/`; the
small scripts and the stylesheet in `static/` ship inside the wheel. Stores nothing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from corral.console import chatroutes, guarding, kube, pages
from corral.console import settings as settings_mod

HERE = Path(__file__).parent
Connect = Callable[[settings_mod.Settings], Awaitable[kube.Kube]]


def create_app(settings: settings_mod.Settings, connect: Connect = kube.connect) -> FastAPI:
    """The console app; `connect` makes its kube client at startup (tests may pass their own)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.kube = await connect(settings)
        try:
            yield
        finally:
            await app.state.kube.close()

    app = FastAPI(title="Corral console", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.settings = settings
    app.state.templates = templates(settings)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    for router in pages.ROUTERS:
        app.include_router(router)
    app.include_router(chatroutes.router)
    app.add_api_route("/healthz", healthz, include_in_schema=False)
    app.add_exception_handler(kube.KubeError, api_error)
    app.add_middleware(guarding.Guard, bind=settings.host)
    return app


async def api_error(request: Request, exc: Exception) -> Response:
    """A page saying what the API server answered (403 shows which permission is missing)."""
    assert isinstance(exc, kube.KubeError)
    status = exc.status if 400 <= exc.status < 500 else 502
    templates: Jinja2Templates = request.app.state.templates
    return templates.TemplateResponse(
        request, "error.html", {"status": exc.status, "message": exc.message}, status_code=status
    )


async def healthz() -> dict[str, str]:
    """Liveness of the console process (the in-cluster Deployment probes it)."""
    return {"status": "ok"}


def templates(settings: settings_mod.Settings) -> Jinja2Templates:
    """The page templates, with the settings every page reads (read-only mode)."""
    env = Jinja2Templates(directory=HERE / "templates")
    env.env.globals["read_only"] = settings.read_only
    return env
