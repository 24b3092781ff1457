"""Settings of the console process: where it listens and which credentials it uses.

`Settings` is built by the CLI from its flags (init arguments win over CORRAL_CONSOLE_* env
vars); tests build it directly. Reads the environment only when a Settings is built. No I/O.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "CORRAL_CONSOLE_"


class Settings(BaseSettings):
    """Console settings (env: CORRAL_CONSOLE_HOST, CORRAL_CONSOLE_PORT, ...)."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    host: str = Field(
        default="127.0.0.1",
        description="Address to bind. The console acts with your credentials: keep it on"
        " loopback unless it runs in a pod behind a ClusterIP Service.",
    )
    port: int = Field(default=8090, ge=0, le=65535, description="Port to bind.")
    kubeconfig: Path | None = Field(
        default=None,
        description="Kubeconfig file; default as kubectl: $KUBECONFIG, then ~/.kube/config, then"
        " the in-cluster ServiceAccount.",
    )
    context: str | None = Field(default=None, description="Kubeconfig context to use.")
    serviceaccount_dir: Path = Field(
        default=Path("/var/run/secrets/kubernetes.io/serviceaccount"),
        description="In a pod: where the ServiceAccount's token, ca.crt and namespace are.",
    )
    namespaces: tuple[str, ...] = Field(
        default=(),
        description="Namespaces to show when you may not list across all namespaces (default:"
        " the context's namespace).",
    )
    request_timeout_seconds: float = Field(
        default=30, gt=0, description="Timeout of one request to the API server."
    )
    watch_timeout_seconds: int = Field(
        default=290,
        ge=1,
        description="A live watch is renewed after this long (the API server ends them too).",
    )
    read_only: bool = Field(
        default=False, description="Hide the forms that create and edit objects."
    )
