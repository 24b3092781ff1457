"""`corral console`: serve the app with uvicorn until interrupted. Does I/O (binds a port).

Called by `corral.cli`. A missing or broken kubeconfig stops start-up with a message saying
what to pass, before the port is bound.
"""

from __future__ import annotations

import asyncio
import sys

import uvicorn

from corral.console import app as app_mod
from corral.console import kube
from corral.console import settings as settings_mod


def run(settings: settings_mod.Settings) -> int:
    try:
        client = asyncio.run(_check(settings))
    except kube.ConfigError as exc:
        print(f"corral console: {exc}", file=sys.stderr)
        return 2
    print(
        f"corral console: http://{settings.host}:{settings.port}/ (namespace {client})",
        file=sys.stderr,
        flush=True,
    )
    config = uvicorn.Config(
        app_mod.create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level="warning",
        proxy_headers=False,
        # Open registry streams (SSE) never end by themselves: do not wait long for them.
        timeout_graceful_shutdown=3,
    )
    uvicorn.Server(config).run()
    return 0


async def _check(settings: settings_mod.Settings) -> str:
    """Load the credentials once before binding, so a bad kubeconfig fails fast and clearly."""
    client = await kube.connect(settings)
    await client.close()
    return client.namespace
