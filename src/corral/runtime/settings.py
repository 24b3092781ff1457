"""Process settings of the runtime that do not come from the Agent: read from CORRAL_* env vars.

The Agent's behaviour is in the runtime config file (`corral.api.runtimeconfig`); these are the
knobs of the process itself (log level, body size cap, how long a drained server waits for
uvicorn). `load()` is the factory `main` uses; tests build `Settings(...)` directly (init arguments
win over the environment). Reads the environment only when a Settings is built.
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "CORRAL_"


class Settings(BaseSettings):
    """Runtime process settings (env: CORRAL_LOG_LEVEL, CORRAL_MAX_REQUEST_BYTES, ...)."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    log_level: str = Field(default="INFO", pattern=r"^(DEBUG|INFO|WARNING|ERROR)$")
    max_request_bytes: int = Field(
        default=4 * 1024 * 1024, ge=1024, description="Larger request bodies get 413."
    )
    default_reserved_completion_tokens: int = Field(
        default=1024,
        ge=1,
        description="Completion tokens the limiter reserves when neither the request nor the"
        " model sets max_tokens.",
    )
    tool_max_parallel: int = Field(
        default=16,
        ge=1,
        le=128,
        description="Tool calls of one model turn run at most this many at a time.",
    )
    mcp_refresh_seconds: float = Field(
        default=300,
        gt=0,
        description="How often each MCP server's tool list is read again (also on"
        " tools/list_changed).",
    )
    mcp_startup_seconds: float = Field(
        default=10,
        ge=0,
        description="How long start-up waits for the MCP servers' first tool lists; a server"
        " still silent then is listed in the background.",
    )
    keep_alive_seconds: float = Field(default=75, gt=0, description="HTTP keep-alive timeout.")
    max_header_bytes: int = Field(
        default=64 * 1024,
        ge=4096,
        description="A request head (request line and headers) over this gets 431.",
    )
    header_timeout_seconds: float = Field(
        default=30, gt=0, description="A request head not complete this long after it began: 408."
    )
    body_timeout_seconds: float = Field(
        default=60, gt=0, description="A request body not complete this long after its head: 408."
    )
    state_store_timeout_seconds: float = Field(
        default=0.5,
        gt=0,
        le=30,
        description="A state store round trip (or connect) slower than this counts as the store"
        " being unreachable.",
    )
    shutdown_grace_seconds: float = Field(
        default=2,
        ge=0,
        description="After the drain, how long uvicorn may still take to close connections.",
    )


def load() -> Settings:
    """Settings from the process environment (CORRAL_* variables)."""
    return Settings()
