"""`corral runtime --config PATH`: load the config, build the app, serve it until SIGTERM.

Returns the process exit code: 0 after a graceful shutdown, 2 when the config or the
environment cannot be served (the reason is logged as one JSON line). Called by `corral.cli`;
reads the config file and the environment, binds the port.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import uvicorn

from corral.api.runtimeconfig import InvalidRuntimeConfig, RuntimeConfig
from corral.runtime import app as appmod
from corral.runtime import auth, httpserver, redaction, settings, shutdown, tools
from corral.runtime import logging as jsonlog
from corral.runtime.providers import factory

log = logging.getLogger(__name__)

CONFIG_ERROR = 2


def run(config_path: Path, host: str, port: int) -> int:
    """Serve the agent described by `config_path` on host:port; the exit code."""
    try:
        conf = settings.load()
    except ValueError as err:
        jsonlog.configure("INFO")
        log.error("invalid CORRAL_* settings: %s", err)
        return CONFIG_ERROR
    jsonlog.configure(conf.log_level)
    try:
        config = RuntimeConfig.from_json(config_path.read_bytes())
        for endpoint in config.models:
            factory.api_key(endpoint, os.environ)
        # Whatever a log line quotes (an upstream's error, an exception), never a secret.
        jsonlog.redact_with(redaction.Redactor(redaction.secrets_of(config, os.environ)))
        app = appmod.create_app(config, conf, os.environ)
    except OSError as err:
        log.error("cannot read the runtime config: %s", err, extra={"path": str(config_path)})
        return CONFIG_ERROR
    except (
        InvalidRuntimeConfig,
        factory.MissingApiKey,
        auth.KeysMissing,
        tools.ToolConfigError,
    ) as err:
        log.error("cannot serve this config: %s", err, extra={"path": str(config_path)})
        return CONFIG_ERROR
    server = shutdown.DrainingServer(
        uvicorn.Config(
            app,
            host=host,
            port=port,
            log_config=None,
            access_log=False,
            server_header=False,
            lifespan="on",
            # uvloop when installed, and httptools (a dependency) with the head bounds uvicorn
            # lacks: together they take about a quarter off the server's own CPU per request.
            loop="auto",
            http=httpserver.bounded(conf.max_header_bytes, conf.header_timeout_seconds),
            timeout_keep_alive=int(conf.keep_alive_seconds),
            timeout_graceful_shutdown=int(conf.shutdown_grace_seconds),
        ),
        drain=app.state.drain,
        drain_timeout=config.server.drain_timeout_seconds,
    )
    server.run()
    if not server.started:
        log.error("the server did not start", extra={"host": host, "port": port})
        return 1
    return 0
