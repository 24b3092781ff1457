"""The app factory: one FastAPI app serving one agent, from its config, settings and env.

`create_app` checks everything that can be checked without a network (auth keys present,
tools servable) and builds the pure parts (metrics, limiter, session store, drain state); its
lifespan creates the long-lived clients (the httpx2 client for tools, the provider chain) once
and closes them at shutdown. Errors of any kind leave through the one mapping in `errors`.
(An error no handler takes is answered, and logged with its request id, by `middleware.Edge`.)
`chain_factory`, `clock` (the per-replica limiter's) and `wall_clock` (the shared limits' and
the budgets' UTC windows) are injectable for tests. Called by `main` and by tests; the app
does network I/O once served.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any, Protocol

import httpx2
import openai
from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from starlette.exceptions import HTTPException

from corral.api.runtimeconfig import ModelEndpoint, RuntimeConfig
from corral.runtime import (
    admission,
    agentloop,
    errors,
    httptools,
    mcptools,
    memory,
    metrics,
    middleware,
    pricing,
    protocol,
    ratelimit,
    redaction,
    routes,
    services,
    serving,
    sessions,
    shutdown,
    statestore,
    tools,
    tracing,
)
from corral.runtime.auth import Authenticator
from corral.runtime.providers import base, failover
from corral.runtime.settings import Settings

log = logging.getLogger(__name__)


class ChainFactory(Protocol):
    """Builds the provider (normally the failover chain) over the configured models."""

    def __call__(
        self, models: list[ModelEndpoint], env: Mapping[str, str], observer: failover.Observer
    ) -> base.Provider: ...


def _default_chain_factory(redact: redaction.Redactor, traces: tracing.Tracing) -> ChainFactory:
    def build(
        models: list[ModelEndpoint], env: Mapping[str, str], observer: failover.Observer
    ) -> base.Provider:
        from corral.runtime.providers import factory

        return factory.build_chain(models, env, observer, redact=redact, tracer=traces.exporting)

    return build


def create_app(
    config: RuntimeConfig,
    settings: Settings,
    env: Mapping[str, str],
    *,
    chain_factory: ChainFactory | None = None,
    clock: Callable[[], float] = time.monotonic,
    wall_clock: Callable[[], float] = time.time,
) -> FastAPI:
    """The app. Raises auth.KeysMissing or tools.ToolConfigError for an unservable config.
    The MCP servers' tools are listed in the lifespan (a silent server does not hold it up)."""
    recorder = metrics.Metrics(
        models=[m.name for m in config.models], tools=[t.name for t in config.tools]
    )
    for endpoint in config.models:
        recorder.circuit(endpoint.provider, endpoint.name, "closed")
    drain = shutdown.Drain()
    authenticator = Authenticator.from_config(config.auth, env)
    toolset = httptools.ToolSet(config.tools, env, config.namespace)
    redact = redaction.Redactor(redaction.secrets_of(config, env))
    traces = tracing.Tracing.from_env(env, config.agent, config.namespace)
    mcp = mcptools.McpTools(
        config.mcp_servers or [],
        env,
        recorder,
        settings.mcp_refresh_seconds,
        frozenset(toolset.entries),
    )
    limiter = ratelimit.RateLimiter(config.rate_limit, clock)
    local_sessions = None
    if config.memory is not None and config.memory.enabled:
        local_sessions = memory.SessionStore(config.memory, clock)
        recorder.track_sessions(local_sessions.__len__)
    primary = (config.models[0].provider, config.models[0].name)
    prices = pricing.Prices(config.models)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        build_chain = chain_factory or _default_chain_factory(redact, traces)
        chain = build_chain(list(config.models), env, metrics.ProviderObserver(recorder))
        # Tool calls: the same client library as the model calls (httpx2 on aiohttp), never
        # via a proxy from the environment, never following a redirect.
        http = openai.DefaultAioHttpClient(
            follow_redirects=False,
            trust_env=False,
            limits=httpx2.Limits(max_connections=256, max_keepalive_connections=64),
        )
        store = None
        if config.state_store is not None:
            store = statestore.Store(
                config.state_store,
                env,
                config.namespace,
                config.agent,
                timeout=settings.state_store_timeout_seconds,
                observe=recorder.store_operation,
            )
            recorder.store_up.set(1)
        gate = admission.Admission(
            config,
            limiter,
            store,
            prices,
            wall_clock=wall_clock,
            observers=admission.Observers(
                budget_rejected=lambda kind, window: recorder.budget_rejections.labels(
                    kind, window
                ).inc(),
                spent=recorder.spent,
                fallback=recorder.store_fallbacks.inc,
                store_up=lambda up: recorder.store_up.set(int(up)),
            ),
        )
        try:
            await mcp.start(settings.mcp_startup_seconds)
            runner = tools.ToolRunner(
                toolset,
                http,
                recorder.tool_call,
                settings.tool_max_parallel,
                redact,
                traces.tracer,  # a no-op tracer when export is off: tool spans are rare
                extra=mcp,
            )
            loop = agentloop.AgentLoop(
                chain,
                runner,
                config.max_tool_iterations,
                on_usage=metrics.usage_recorder(recorder, primary),
                price=lambda usage: prices.cost(*(metrics.answered_by.get() or primary), usage),
            )
            chat = serving.ChatServing(
                config,
                loop,
                gate,
                _sessions(local_sessions, store, config, wall_clock),
                toolset.definitions,
                settings.default_reserved_completion_tokens,
                on_first_token=recorder.time_to_first_token.observe,
                on_rejected=lambda kind: recorder.ratelimit_rejections.labels(kind).inc(),
                tracer=traces.exporting,
            )
            drain.on_expire(chat.stop)
            started = int(time.time())
            app.state.services = services.Services(
                config=config,
                settings=settings,
                auth=authenticator,
                chat=chat,
                metrics=recorder,
                drain=drain,
                models_body=protocol.models_body(config.agent, started),
                model_body=protocol.model_body(config.agent, started),
            )
            log.info(
                "serving agent",
                extra={"agent": config.agent, "models": [m.name for m in config.models]},
            )
            yield
        finally:
            await mcp.close()
            await chain.aclose()
            await http.aclose()
            await gate.aclose()
            if store is not None:
                await store.aclose()
            traces.shutdown()

    app = FastAPI(
        title=f"Corral agent {config.agent}",
        version="v1",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.include_router(routes.router)
    _install_error_handlers(app)
    app.add_middleware(middleware.Edge, recorder=recorder, drain=drain)
    app.openapi = lambda: _openapi(app, config.agent)  # type: ignore[method-assign]
    app.state.drain = drain
    app.state.metrics = recorder
    return app


def _sessions(
    local: memory.SessionStore | None,
    store: statestore.Store | None,
    config: RuntimeConfig,
    wall_clock: Callable[[], float],
) -> sessions.Sessions | None:
    """Sessions in the shared store when there is one (the local store as FailOpen's
    fallback), in the process otherwise; None without memory."""
    if local is None or config.memory is None:
        return None
    if store is None or config.state_store is None:
        return sessions.LocalSessions(local)
    fallback = local if config.state_store.failure_policy == "FailOpen" else None
    return sessions.SharedSessions(store, config.memory, fallback, wall_clock)


def _install_error_handlers(app: FastAPI) -> None:
    def answer(exc: BaseException) -> Response:
        mapped = errors.to_response(exc)
        return Response(
            mapped.body, status_code=mapped.status, headers=mapped.headers, media_type=routes.JSON
        )

    async def api_error(request: Request, exc: Exception) -> Response:
        if isinstance(exc, base.ProviderError):
            log.warning("model call failed: %s", exc, extra={"error": type(exc).__name__})
        return answer(exc)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        status = exc.status_code
        if status == 404:
            return answer(errors.RouteNotFound(f"no route {request.url.path}"))
        if status == 405:
            return answer(
                errors.RouteNotFound(f"{request.method} is not allowed on {request.url.path}", 405)
            )
        return answer(errors.ApiError(str(exc.detail)))

    async def validation_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        param = protocol.param_of([p for p in first["loc"] if p != "body"])
        return answer(errors.InvalidField(f"{param or 'body'}: {first['msg']}", param=param))

    app.add_exception_handler(errors.ApiError, api_error)
    app.add_exception_handler(base.ProviderError, api_error)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)


def _openapi(app: FastAPI, agent: str) -> dict[str, Any]:
    """FastAPI's schema plus the chat request and answer models the routes refer to; `model`
    is documented as the one value this endpoint serves."""
    if app.openapi_schema is None:
        schema = get_openapi(title=app.title, version=app.version, routes=app.routes)
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        for model in (protocol.ChatCompletionRequest, protocol.ChatCompletionOut):
            found = model.model_json_schema(ref_template="#/components/schemas/{model}")
            components.update(found.pop("$defs", {}))
            components[model.__name__] = found
        components["ChatCompletionRequest"]["properties"]["model"]["enum"] = [agent]
        app.openapi_schema = schema
    return app.openapi_schema
