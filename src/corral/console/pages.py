"""The console's page routers, in the order `app.create_app` includes them. No I/O."""

from __future__ import annotations

from fastapi import APIRouter

from corral.console import agentroutes, authorroutes, registryroutes

ROUTERS: tuple[APIRouter, ...] = (
    registryroutes.router,
    agentroutes.router,
    authorroutes.router,
)
