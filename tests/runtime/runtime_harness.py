"""The harness of the runtime's real-HTTP tests: our app on a real loopback port, driven by
the official `openai` SDK, in front of the scripted fake upstreams (tests/fakes).

`ServedApp` runs an app under uvicorn in a background thread; `Running` is the handle tests
use (`base_url` for the SDK, `client()`, `get()`, `metrics()`). `agent_config(...)` builds a
RuntimeConfig with test defaults. `ToolServer` is a real HTTP server on loopback for HTTP
tools. The fixtures over these live in conftest.py.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import openai
import uvicorn
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families

from corral.api.runtimeconfig import RuntimeConfig
from corral.runtime import httpserver
from corral.runtime.settings import Settings
from fakes import serving

AGENT = "support"
START_TIMEOUT = 10.0


@dataclass
class Running:
    """A runtime app served on 127.0.0.1:port."""

    app: FastAPI
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    def client(self, api_key: str = "unused", **options: Any) -> openai.OpenAI:
        """The official SDK pointed at us, with its own retries off."""
        return openai.OpenAI(base_url=self.base_url, api_key=api_key, max_retries=0, **options)

    def async_client(self, api_key: str = "unused", **options: Any) -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(base_url=self.base_url, api_key=api_key, max_retries=0, **options)

    def get(self, path: str, **options: Any) -> httpx.Response:
        return httpx.get(self.url + path, timeout=10, **options)

    def post(self, path: str, **options: Any) -> httpx.Response:
        return httpx.post(self.url + path, timeout=10, **options)

    def metrics(self) -> str:
        return self.get("/metrics").text

    def sample(self, name: str, **labels: str) -> float | None:
        """The value of one series in /metrics (None when absent)."""
        return sample(self.metrics(), name, **labels)


def sample(exposition: str, name: str, **labels: str) -> float | None:
    """The value of the series `name{labels...}` in Prometheus text (extra labels ignored)."""
    for family in text_string_to_metric_families(exposition):
        for found in family.samples:
            if found.name == name and all(found.labels.get(k) == v for k, v in labels.items()):
                return float(found.value)
    return None


class ServedApp:
    """The app on a loopback port in a thread, on the same bounded httptools protocol that
    `corral runtime` serves with (`settings` gives its bounds)."""

    def __init__(self, app: FastAPI, settings: Settings | None = None) -> None:
        settings = settings or Settings()
        # IPPROTO_TCP, not the default 0: asyncio sets TCP_NODELAY on accepted connections only
        # when the proto says TCP; without it every keep-alive answer waits ~40 ms (Nagle).
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            app,
            log_config=None,
            access_log=False,
            timeout_graceful_shutdown=2,
            backlog=1024,
            http=httpserver.bounded(settings.max_header_bytes, settings.header_timeout_seconds),
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [sock]}, daemon=True
        )
        self.thread.start()
        deadline = time.monotonic() + START_TIMEOUT
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the runtime did not start on port {self.port}")
            time.sleep(0.005)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)
        if self.thread.is_alive():
            raise RuntimeError(f"the runtime on port {self.port} did not stop")


def agent_config(
    *upstreams: str | tuple[str, str], agent: str = AGENT, **fields: Any
) -> RuntimeConfig:
    """A RuntimeConfig over these upstream base URLs (openai) or (provider, base_url) pairs,
    primary first; `fields` are RuntimeConfig fields by their wire names."""
    models = []
    for index, upstream in enumerate(upstreams):
        provider, url = upstream if isinstance(upstream, tuple) else ("openai", upstream)
        model: dict[str, Any] = {"provider": provider, "name": f"model-{index}", "baseURL": url}
        if provider == "gemini":
            model["apiKeyEnv"] = "GEMINI_KEY"
        models.append(model)
    document = {"agent": agent, "namespace": "default", "models": models, **fields}
    return RuntimeConfig.model_validate(document)


# -- a real HTTP server for HTTP tools --------------------------------------------------------


@dataclass(frozen=True)
class ToolReply:
    status: int = 200
    body: Any = None
    headers: tuple[tuple[str, str], ...] = ()
    delay: float = 0.0


class ToolServer(serving.FakeServer):
    """An HTTP endpoint for tools: answers by path with `routes[path]` (a ToolReply or a
    callable(request) -> ToolReply); records requests like the upstream fakes."""

    def __init__(self) -> None:
        super().__init__()
        self.routes: dict[str, ToolReply | Callable[[serving.RecordedRequest], ToolReply]] = {}

    async def handle(self, request: serving.RecordedRequest, exchange: serving.Exchange) -> None:
        route = self.routes.get(request.path)
        if route is None:
            await exchange.json(404, {"detail": f"no route {request.path}"})
            return
        reply = route(request) if callable(route) else route
        if reply.delay:
            await exchange.sleep(reply.delay)
        body = reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body).encode()
        await exchange.raw(reply.status, body, "application/json", dict(reply.headers))
