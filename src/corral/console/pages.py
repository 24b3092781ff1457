"""The console's page routers, in the order `app.create_app` includes them. No I/O."""

from __future__ import annotations

from fastapi import APIRouter

ROUTERS: tuple[APIRouter, ...] = ()
