"""The Agent kind: a model, its fallbacks, a persona, tools, limits and placement. Pure."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import ConfigDict, Field, model_validator

from corral.api.common import (
    Condition,
    HttpUrl,
    LocalObjectReference,
    Model,
    ObjectName,
    SecretKeySelector,
)
from corral.api.mcpservers import MSG_UNIQUE_SERVERS, MCPServerRef
from corral.api.placement import Affinity, Labels, ResourceRequirements, Toleration
from corral.api.sharedstate import BudgetSpec, PricingSpec, StateStoreSpec

Provider = Literal["openai", "gemini"]

MSG_FALLBACK_DIFFERS = (
    "each entry of spec.fallbacks must differ from spec.model "
    "(provider, name or baseURL): a fallback to the same model cannot help"
)
MSG_UNIQUE_TOOLS = "spec.tools must not name the same Tool twice"
MSG_RATE_LIMIT_EMPTY = "spec.rateLimit must set requestsPerMinute, tokensPerMinute or both"
MSG_BUDGET_NEEDS_STORE = (
    "spec.budget needs spec.stateStore: budgets are kept in the shared store, so that every"
    " replica spends from the same budget and it survives restarts"
)
MSG_COST_NEEDS_PRICING = (
    "spec.budget.costPerDay/costPerMonth need pricing on spec.model and on every fallback:"
    " without a price a model's spend is unknown"
)
MSG_AUTOSCALING_EXCLUDES_REPLICAS = (
    "spec.autoscaling and spec.replicas exclude each other: with spec.autoscaling a"
    " HorizontalPodAutoscaler owns the replica count, so remove spec.replicas"
)
MSG_AUTOSCALING_BOUNDS = "spec.autoscaling.minReplicas must not exceed spec.autoscaling.maxReplicas"


class AutoscalingSpec(Model):
    """A HorizontalPodAutoscaler (autoscaling/v2) on CPU utilisation owns the replica count."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "self.minReplicas <= self.maxReplicas",
                    "message": MSG_AUTOSCALING_BOUNDS,
                }
            ]
        }
    )

    min_replicas: int = Field(default=1, ge=1, le=100, description="Fewest pods.")
    max_replicas: int = Field(ge=1, le=100, description="Most pods.")
    target_cpu_utilization_percentage: int = Field(
        default=80,
        ge=1,
        le=1000,
        alias="targetCPUUtilizationPercentage",
        description="Average CPU use, in percent of the pods' CPU request, the HPA aims for.",
    )

    @model_validator(mode="after")
    def _bounds(self) -> AutoscalingSpec:
        if self.min_replicas > self.max_replicas:
            raise ValueError(MSG_AUTOSCALING_BOUNDS)
        return self


class ModelSpec(Model):
    """One model endpoint: the primary in spec.model, or a fallback."""

    provider: Provider = Field(description="openai (any OpenAI-compatible server) or gemini.")
    name: str = Field(min_length=1, max_length=256, description="Model name, e.g. gpt-4o-mini.")
    base_url: HttpUrl | None = Field(
        default=None,
        alias="baseURL",
        description="Base URL of an OpenAI-compatible server (vLLM, llama.cpp, Ollama, ...);"
        " unset means the provider's public endpoint.",
    )
    api_key_secret_ref: SecretKeySelector | None = Field(
        default=None,
        alias="apiKeySecretRef",
        description="Secret key holding the provider API key; omit for keyless local servers.",
    )
    temperature: float | None = Field(default=None, ge=0, le=2, description="Sampling temperature.")
    max_tokens: int | None = Field(
        default=None, ge=1, le=1_000_000, description="Upper bound on generated tokens per call."
    )
    timeout_seconds: int = Field(
        default=60, ge=1, le=600, description="Per-attempt timeout before failing over."
    )
    pricing: PricingSpec | None = Field(
        default=None, description="USD per million tokens, for spend metrics and cost budgets."
    )


class RateLimitSpec(Model):
    """Requests and tokens per minute, per API key (per agent when auth is off): across all
    replicas with spec.stateStore, per replica without."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "has(self.requestsPerMinute) || has(self.tokensPerMinute)",
                    "message": MSG_RATE_LIMIT_EMPTY,
                }
            ]
        }
    )

    requests_per_minute: int | None = Field(
        default=None, ge=1, le=1_000_000, description="Chat completion requests per minute."
    )
    tokens_per_minute: int | None = Field(
        default=None,
        ge=1,
        le=1_000_000_000,
        description="Prompt plus completion tokens per minute (estimated before the call).",
    )

    @model_validator(mode="after")
    def _sets_a_limit(self) -> RateLimitSpec:
        if self.requests_per_minute is None and self.tokens_per_minute is None:
            raise ValueError(MSG_RATE_LIMIT_EMPTY)
        return self


class AuthSpec(Model):
    """Bearer API keys clients must present. The Secret key holds one key per line."""

    api_keys_secret_ref: SecretKeySelector = Field(
        description="Secret key whose value lists the accepted API keys, one per line."
    )


class MemorySpec(Model):
    """Server-side conversation memory keyed by the x-session-id header."""

    enabled: bool = Field(default=False, description="Keep conversation history per session.")
    max_messages: int = Field(default=50, ge=1, le=1000, description="Messages kept per session.")
    max_tokens: int = Field(
        default=8000, ge=100, le=1_000_000, description="Estimated tokens kept per session."
    )
    ttl_seconds: int = Field(
        default=3600, ge=10, le=604800, description="Idle time after which a session is dropped."
    )
    max_sessions: int = Field(
        default=10000, ge=1, le=1_000_000, description="Sessions held; the least recent go first."
    )


class TracingSpec(Model):
    """Where this Agent's runtime sends its OpenTelemetry traces (overrides the chart's)."""

    otlp_endpoint: HttpUrl = Field(
        alias="otlpEndpoint",
        description="OTLP/HTTP base URL (OTEL_EXPORTER_OTLP_ENDPOINT), e.g."
        " http://otel-collector.observability.svc:4318.",
    )
    service_name: str | None = Field(
        default=None,
        min_length=1,
        max_length=253,
        description="service.name of the spans (OTEL_SERVICE_NAME); default corral-agent-NAME.",
    )


class AgentSpec(Model):
    """Desired state of an Agent."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "!has(self.fallbacks) || self.fallbacks.all(f, "
                    "f.provider != self.model.provider || f.name != self.model.name || "
                    "(has(f.baseURL) ? f.baseURL : '') != "
                    "(has(self.model.baseURL) ? self.model.baseURL : ''))",
                    "message": MSG_FALLBACK_DIFFERS,
                    "fieldPath": ".fallbacks",
                },
                {
                    "rule": "!has(self.tools) || "
                    "self.tools.all(t, self.tools.exists_one(u, u.name == t.name))",
                    "message": MSG_UNIQUE_TOOLS,
                    "fieldPath": ".tools",
                },
                {
                    "rule": "!has(self.budget) || has(self.stateStore)",
                    "message": MSG_BUDGET_NEEDS_STORE,
                    "fieldPath": ".budget",
                },
                {
                    "rule": "!has(self.budget) ||"
                    " !(has(self.budget.costPerDay) || has(self.budget.costPerMonth)) ||"
                    " (has(self.model.pricing) &&"
                    " (!has(self.fallbacks) || self.fallbacks.all(f, has(f.pricing))))",
                    "message": MSG_COST_NEEDS_PRICING,
                    "fieldPath": ".budget",
                },
                {
                    "rule": "!has(self.mcpServers) || "
                    "self.mcpServers.all(t, self.mcpServers.exists_one(u, u.name == t.name))",
                    "message": MSG_UNIQUE_SERVERS,
                    "fieldPath": ".mcpServers",
                },
                {
                    "rule": "!(has(self.autoscaling) && has(self.replicas))",
                    "message": MSG_AUTOSCALING_EXCLUDES_REPLICAS,
                    "fieldPath": ".autoscaling",
                },
            ]
        }
    )

    persona_ref: LocalObjectReference | None = Field(
        default=None, description="Persona whose system prompt the Agent starts from."
    )
    instructions: str | None = Field(
        default=None, max_length=32768, description="Appended to the persona's system prompt."
    )
    model: ModelSpec = Field(description="The primary model.")
    fallbacks: list[ModelSpec] | None = Field(
        default=None, max_length=5, description="Tried in order when the primary fails."
    )
    tools: list[LocalObjectReference] | None = Field(
        default=None, max_length=32, description="Tools in this namespace the model may call."
    )
    mcp_servers: list[MCPServerRef] | None = Field(
        default=None,
        alias="mcpServers",
        max_length=16,
        description="MCPServers in this namespace whose tools the model may call.",
    )
    max_tool_iterations: int = Field(
        default=8, ge=1, le=64, description="Model turns per request before giving up on tools."
    )
    max_call_depth: int = Field(
        default=3,
        ge=1,
        le=16,
        description="Longest chain of Agents calling Agents (through agent tools) that this"
        " Agent takes part in, itself included; a cycle or a deeper call is a tool error.",
    )
    request_timeout_seconds: int = Field(
        default=300,
        ge=1,
        le=3600,
        description="Deadline of one request across every model turn and tool call (504 after).",
    )
    tracing: TracingSpec | None = Field(
        default=None, description="OpenTelemetry trace export of the runtime (OTLP/HTTP)."
    )
    rate_limit: RateLimitSpec | None = Field(
        default=None,
        description="Requests and tokens per minute per API key: across all replicas with"
        " stateStore, per replica without.",
    )
    state_store: StateStoreSpec | None = Field(
        default=None,
        description="Redis or Valkey shared by the replicas: rate limits, budgets and sessions"
        " then hold across all of them.",
    )
    budget: BudgetSpec | None = Field(
        default=None,
        description="Token and cost caps per API key in UTC days and months (needs stateStore).",
    )
    auth: AuthSpec | None = Field(default=None, description="Require bearer API keys.")
    memory: MemorySpec | None = Field(
        default=None,
        description="Conversation memory bounds; sessions live in the stateStore when set.",
    )
    replicas: int | None = Field(
        default=None, ge=0, le=100, description="Pod count; leave unset when an HPA owns it."
    )
    autoscaling: AutoscalingSpec | None = Field(
        default=None,
        description="Scale the pods on CPU with a HorizontalPodAutoscaler owned by the Agent;"
        " excludes spec.replicas.",
    )
    resources: ResourceRequirements | None = Field(
        default=None, description="Runtime container resources (defaults are applied if unset)."
    )
    image: str | None = Field(
        default=None,
        min_length=1,
        max_length=512,
        pattern=r"^\S+$",
        description="Override the runtime image for this Agent.",
    )
    service_account_name: ObjectName | None = Field(
        default=None, description="ServiceAccount the runtime pods run as."
    )
    node_selector: Labels | None = Field(
        default=None, max_length=64, description="Pod nodeSelector."
    )
    tolerations: list[Toleration] | None = Field(
        default=None, max_length=32, description="Pod tolerations."
    )
    affinity: Affinity | None = Field(default=None, description="Pod affinity rules.")
    pod_annotations: dict[str, Annotated[str, Field(max_length=8192)]] | None = Field(
        default=None,
        max_length=64,
        description="Extra annotations on the runtime pods (e.g. for scraping).",
    )

    @model_validator(mode="after")
    def _cross_field_rules(self) -> AgentSpec:
        primary = (self.model.provider, self.model.name, self.model.base_url or "")
        for fallback in self.fallbacks or []:
            if (fallback.provider, fallback.name, fallback.base_url or "") == primary:
                raise ValueError(MSG_FALLBACK_DIFFERS)
        names = [tool.name for tool in self.tools or []]
        if len(names) != len(set(names)):
            raise ValueError(MSG_UNIQUE_TOOLS)
        if self.budget is not None and self.state_store is None:
            raise ValueError(MSG_BUDGET_NEEDS_STORE)
        models = [self.model, *(self.fallbacks or [])]
        if (
            self.budget is not None
            and self.budget.limits_cost
            and any(m.pricing is None for m in models)
        ):
            raise ValueError(MSG_COST_NEEDS_PRICING)
        servers = [server.name for server in self.mcp_servers or []]
        if len(servers) != len(set(servers)):
            raise ValueError(MSG_UNIQUE_SERVERS)
        if self.autoscaling is not None and self.replicas is not None:
            raise ValueError(MSG_AUTOSCALING_EXCLUDES_REPLICAS)
        return self


class AgentStatus(Model):
    """Observed state of an Agent (kstatus-compatible)."""

    observed_generation: int | None = Field(
        default=None, ge=0, description="The .metadata.generation this status describes."
    )
    conditions: list[Condition] | None = Field(
        default=None,
        max_length=16,
        description="Ready (True once the current generation is rolled out and available)"
        " and the reasons it is not.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )
    endpoint: str | None = Field(
        default=None, max_length=2048, description="In-cluster OpenAI base URL of the Agent."
    )
    replicas: int | None = Field(default=None, ge=0, description="Pods desired.")
    current_replicas: int | None = Field(
        default=None,
        ge=0,
        description="Pods the Deployment has now.",
    )
    desired_replicas: int | None = Field(
        default=None,
        ge=0,
        description="Pods wanted: the HorizontalPodAutoscaler's latest decision with"
        " spec.autoscaling, else spec.replicas.",
    )
    ready_replicas: int | None = Field(default=None, ge=0, description="Pods ready.")
    updated_replicas: int | None = Field(default=None, ge=0, description="Pods on the latest spec.")
    available_replicas: int | None = Field(default=None, ge=0, description="Pods available.")
    config_hash: str | None = Field(
        default=None,
        max_length=128,
        description="Hash of the rendered config and referenced Secret data.",
    )
