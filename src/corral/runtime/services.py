"""The long-lived objects of one running app, and the typed dependency routes reach them by.

Built by `app.create_app` (pure parts) and its lifespan (clients), stored once on
`app.state.services`; routes declare `svc: Svc` instead of touching globals. No I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from corral.api.runtimeconfig import RuntimeConfig
from corral.runtime import auth, metrics, serving, shutdown
from corral.runtime.settings import Settings


@dataclass(frozen=True, slots=True)
class Services:
    config: RuntimeConfig
    settings: Settings
    auth: auth.Authenticator
    chat: serving.ChatServing
    metrics: metrics.Metrics
    drain: shutdown.Drain
    models_body: bytes
    model_body: bytes


async def get(request: Request) -> Services:
    """The app's services (present once the lifespan has started). Async on purpose: FastAPI
    runs a sync dependency in its thread pool, a thread hop on every request."""
    found: Services = request.app.state.services
    return found


Svc = Annotated[Services, Depends(get)]
