"""Fixtures for the runtime's real-HTTP tests (the machinery is in runtime_harness.py).

`serve(config, env=..., settings=..., **create_app_kwargs)` starts our app on a loopback port
and returns a `Running` handle; every server started is stopped at teardown. `upstream` is a
scripted OpenAI-compatible fake; `agent` is our runtime over it with a persona and an example;
`tool_server` is a real HTTP server for HTTP tools. `redis_server` is a real redis-server on
loopback (hack/redisserver.py installs it on first use: a test never skips for want of it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from runtime_harness import Running, ServedApp, ToolServer, agent_config

import redisserver
from corral.api.runtimeconfig import RuntimeConfig
from corral.runtime.app import create_app
from corral.runtime.settings import Settings
from fakes.openai_server import FakeOpenAI


@pytest.fixture
def serve() -> Iterator[Callable[..., Running]]:
    started: list[ServedApp] = []

    def start(
        config: RuntimeConfig,
        env: dict[str, str] | None = None,
        settings: Settings | None = None,
        **options: Any,
    ) -> Running:
        environment = {"GEMINI_KEY": "test-key", **(env or {})}
        settings = settings or Settings()
        app = create_app(config, settings, environment, **options)
        thread = ServedApp(app, settings)
        started.append(thread)
        return Running(app, thread.port)

    yield start
    for thread in reversed(started):
        thread.stop()


@pytest.fixture
def upstream() -> Iterator[FakeOpenAI]:
    """A scripted OpenAI-compatible upstream on loopback."""
    with FakeOpenAI() as fake:
        yield fake


@pytest.fixture
def agent(serve: Callable[..., Running], upstream: FakeOpenAI) -> Running:
    """Our runtime with a system prompt and one few-shot example, over `upstream`."""
    config = agent_config(
        upstream.base_url,
        systemPrompt="You are a concise support engineer.",
        examples=[{"user": "Hi", "assistant": "Hello! How can I help?"}],
    )
    return serve(config)


@pytest.fixture
def tool_server() -> Iterator[ToolServer]:
    server = ToolServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_server() -> Iterator[redisserver.RedisServer]:
    """A fresh redis-server on a free loopback port, with a password, for one test."""
    with redisserver.RedisServer(password="test-store-password") as server:
        yield server
