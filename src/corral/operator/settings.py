"""Operator settings from `CORRAL_*` environment variables, built by the `load` factory.

No I/O beyond reading the environment. `main` calls `load()` once at startup and hands the
result to everything else as an argument (renderers never read settings themselves), so tests
build their own with `load(image=..., ...)` or `OperatorSettings(...)`.
"""

from __future__ import annotations

import re
import socket
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

OTEL_NAME = r"OTEL_[A-Z0-9_]+"


class Resources(BaseModel):
    """Default requests/limits of the runtime container when an Agent sets none."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    requests: dict[str, str] = Field(default_factory=lambda: {"cpu": "100m", "memory": "128Mi"})
    limits: dict[str, str] = Field(default_factory=lambda: {"memory": "512Mi"})


class OperatorSettings(BaseSettings):
    """Everything about the operator that does not come from an Agent."""

    model_config = SettingsConfigDict(env_prefix="CORRAL_", frozen=True, extra="ignore")

    image: str = Field(
        default="ghcr.io/corral-dev/corral:0.1.0", description="Runtime image for every Agent."
    )
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] = "IfNotPresent"
    default_resources: Resources = Field(default_factory=Resources)
    run_as_user: int = Field(default=65532, ge=1, description="Non-root UID/GID of the pods.")
    drain_seconds: float = Field(
        default=25, gt=0, le=600, description="How long the runtime drains on SIGTERM."
    )
    pre_stop_seconds: int = Field(
        default=5,
        ge=0,
        le=60,
        description="preStop sleep, so Services stop routing to a pod before it drains.",
    )
    termination_grace_seconds: int = Field(
        default=35, ge=1, description="Pod grace period; must exceed preStop plus drain."
    )
    pod_disruption_budgets: bool = Field(
        default=True, description="Render a PodDisruptionBudget when an Agent has replicas > 1."
    )
    drift_interval_seconds: float = Field(
        default=300, gt=0, description="How often every Agent is re-reconciled regardless."
    )
    status_refresh_interval_seconds: float = Field(
        default=5,
        ge=0,
        le=60,
        description="A Persona's or Tool's status (usedBy) is recomputed at most this often;"
        " the changes meanwhile (many Agents applied at once) share the next refresh.",
    )
    first_status_delay_seconds: float = Field(
        default=3,
        ge=0,
        le=60,
        description="A new Agent's first status waits at most this long for its first rollout,"
        " so a rollout done meanwhile costs one status write (Ready) instead of two"
        " (RollingOut, then Ready). Meanwhile its status.observedGeneration stays 0, which"
        " kstatus (Helm --wait, Flux) and Argo CD read as in progress; a failure is written"
        " at once. 0: write RollingOut at once.",
    )
    mcp_discovery_interval_seconds: float = Field(
        default=300, gt=0, description="How often every MCPServer's tools are listed again."
    )
    mcp_retry_seconds: float = Field(
        default=30, gt=0, description="How soon an MCPServer whose discovery failed is retried."
    )
    workers: int = Field(
        default=64, ge=1, le=256, description="Reconciles that run at once (of distinct objects)."
    )
    peering: str | None = Field(
        default=None,
        description="Name of the Lease the replicas elect their leader with (`--peering`);"
        " unset: this process leads alone.",
    )
    peering_namespace: str | None = Field(
        default=None, description="Namespace of the Lease; default: the pod's own namespace."
    )
    lease_duration_seconds: int = Field(
        default=10, ge=2, description="A Lease unrenewed this long is taken by a standby."
    )
    lease_renew_deadline_seconds: int = Field(
        default=7, ge=2, description="A leader unable to renew this long stops working."
    )
    lease_retry_period_seconds: int = Field(
        default=2, ge=1, description="How often the leader renews and a standby tries."
    )
    retry_base_seconds: float = Field(default=5, gt=0, description="First retry delay.")
    retry_max_seconds: float = Field(default=300, gt=0, description="Longest retry delay.")
    watch_server_timeout: int = Field(default=300, ge=1, description="Watch timeout (server).")
    watch_client_timeout: int = Field(default=330, ge=1, description="Watch timeout (client).")
    connect_timeout: float = Field(default=10, gt=0, description="API connect timeout.")
    request_timeout: float = Field(default=30, gt=0, description="API request timeout.")
    listen_host: str = Field(
        default="0.0.0.0", description="Address of the liveness and metrics endpoints."
    )
    runtime_otel_env: dict[str, str] = Field(
        default_factory=dict,
        description="Standard OTEL_* variables set on every runtime container (from the chart's"
        " runtime.tracing); an Agent's spec.tracing overrides the endpoint and service name.",
    )
    reporting_instance: str = Field(
        default_factory=socket.gethostname, description="Instance named in posted Events."
    )

    @model_validator(mode="after")
    def _grace_exceeds_drain(self) -> OperatorSettings:
        if self.termination_grace_seconds <= self.pre_stop_seconds + self.drain_seconds:
            raise ValueError(
                f"termination_grace_seconds ({self.termination_grace_seconds}) must exceed"
                f" pre_stop_seconds + drain_seconds ({self.pre_stop_seconds} +"
                f" {self.drain_seconds}) so that draining pods are not killed"
            )
        wrong = sorted(k for k in self.runtime_otel_env if not re.fullmatch(OTEL_NAME, k))
        if wrong:
            raise ValueError(f"runtime_otel_env may set OTEL_* variables only, not {wrong}")
        if not (
            self.lease_duration_seconds
            > self.lease_renew_deadline_seconds
            > 1.2 * self.lease_retry_period_seconds
        ):
            raise ValueError(
                "lease_duration_seconds > lease_renew_deadline_seconds >"
                " 1.2 * lease_retry_period_seconds must hold, so that two replicas never lead"
            )
        if self.watch_client_timeout <= self.watch_server_timeout:
            raise ValueError("watch_client_timeout must exceed watch_server_timeout")
        return self


def load(**overrides: Any) -> OperatorSettings:
    """Settings from the environment, with explicit overrides winning (for tests)."""
    return OperatorSettings(**overrides)
