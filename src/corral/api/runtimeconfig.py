"""The runtime config: everything one runtime process needs, resolved. Pure.

The operator renders it from an Agent, its Persona and Tools into the Agent's ConfigMap
(key `runtime.json`); `corral runtime --config PATH` reads it back. Secrets are never in it:
it names the environment variables that the Deployment fills from Secrets by secretKeyRef.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, model_validator

from corral.api.agents import MemorySpec, Provider, RateLimitSpec
from corral.api.common import HTTP_URL, Model
from corral.api.personas import FewShotExample
from corral.api.sharedstate import BudgetSpec, FailurePolicy, PricingSpec, StoreUrl

ENV_NAME = r"^[A-Z_][A-Z0-9_]*$"
EnvName = Annotated[str, Field(pattern=ENV_NAME, max_length=256)]


class ModelEndpoint(Model):
    """One model to call; the list in RuntimeConfig.models is primary first, then fallbacks."""

    provider: Provider
    name: str = Field(min_length=1, max_length=256)
    base_url: str | None = Field(default=None, alias="baseURL", pattern=HTTP_URL)
    api_key_env: str | None = Field(
        default=None, pattern=ENV_NAME, description="Env var holding the API key, if any."
    )
    temperature: float | None = Field(default=None, ge=0, le=2)
    max_tokens: int | None = Field(default=None, ge=1)
    timeout_seconds: float = Field(default=60, gt=0, le=600)
    pricing: PricingSpec | None = None


class HttpCall(Model):
    """An HTTP tool, resolved: header values from Secrets are named by env var."""

    url: str = Field(min_length=1, pattern=HTTP_URL)
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = "GET"
    headers: dict[str, str] = Field(default_factory=dict)
    header_envs: dict[str, EnvName] = Field(
        default_factory=dict, description="Header name -> env var holding its value."
    )
    timeout_seconds: float = Field(default=10, gt=0, le=300)
    max_response_bytes: int = Field(default=1_048_576, ge=1)


class AgentCall(Model):
    """An agent tool, resolved to the other Agent's OpenAI base URL and model name."""

    base_url: str = Field(alias="baseURL", pattern=HTTP_URL)
    model: str = Field(min_length=1)
    timeout_seconds: float = Field(default=120, gt=0, le=600)


class McpServerConfig(Model):
    """An MCP server whose tools are offered, resolved: header values from Secrets by env var.
    The runtime lists the tools itself (`tools` is the Agent's allow-list, None = all)."""

    name: str = Field(min_length=1, max_length=253, description="The MCPServer's name.")
    url: str = Field(min_length=1, pattern=HTTP_URL)
    transport: Literal["streamable-http", "sse"] = "streamable-http"
    headers: dict[str, str] = Field(default_factory=dict)
    header_envs: dict[str, EnvName] = Field(
        default_factory=dict, description="Header name -> env var holding its value."
    )
    timeout_seconds: float = Field(default=30, gt=0, le=600)
    tools: list[str] | None = Field(default=None, description="Allow-list; None offers all.")
    max_result_bytes: int = Field(default=1_048_576, ge=1)


class RuntimeTool(Model):
    """A tool offered to the model, by function name."""

    name: str = Field(pattern=r"^[a-zA-Z0-9_-]{1,64}$", description="Function name.")
    description: str = Field(min_length=1)
    parameters: dict[str, Any]
    http: HttpCall | None = None
    agent: AgentCall | None = None

    @model_validator(mode="after")
    def _exactly_one_target(self) -> RuntimeTool:
        if (self.http is None) == (self.agent is None):
            raise ValueError(f"tool {self.name!r}: exactly one of http or agent must be set")
        return self


class AuthConfig(Model):
    """Where the accepted bearer keys are: an env var holding one key per line."""

    api_keys_env: str = Field(pattern=ENV_NAME)


class StateStoreConfig(Model):
    """The shared store: its URL, the env vars holding its password and (for rediss://) the
    PEM CA its certificate is verified against, what to do without it."""

    url: StoreUrl
    password_env: str | None = Field(default=None, pattern=ENV_NAME)
    ca_env: str | None = Field(default=None, pattern=ENV_NAME)
    failure_policy: FailurePolicy = "FailClosed"


class ServerConfig(Model):
    """Process behaviour that does not come from the Agent spec."""

    drain_timeout_seconds: float = Field(
        default=25, gt=0, le=600, description="How long SIGTERM waits for in-flight requests."
    )
    log_prompts: bool = Field(default=False, description="Log prompt text (off by default).")


class RuntimeConfig(Model):
    """The whole runtime config of one Agent."""

    agent: str = Field(min_length=1, max_length=63, description="Agent name; the API's model id.")
    namespace: str = Field(min_length=1, max_length=63)
    system_prompt: str = Field(default="", max_length=65536)
    examples: list[FewShotExample] = Field(default_factory=list)
    models: list[ModelEndpoint] = Field(min_length=1, max_length=6)
    tools: list[RuntimeTool] = Field(default_factory=list, max_length=32)
    # None rather than []: a config without MCP servers renders (and hashes) as before them.
    mcp_servers: list[McpServerConfig] | None = Field(default=None, max_length=16)
    max_tool_iterations: int = Field(default=8, ge=1, le=64)
    max_call_depth: int = Field(default=3, ge=1, le=16)
    request_timeout_seconds: float = Field(default=300, gt=0, le=3600)
    rate_limit: RateLimitSpec | None = None
    auth: AuthConfig | None = None
    memory: MemorySpec | None = None
    state_store: StateStoreConfig | None = None
    budget: BudgetSpec | None = None
    server: ServerConfig = Field(default_factory=ServerConfig)

    @model_validator(mode="after")
    def _unique_tool_names(self) -> RuntimeConfig:
        names = [tool.name for tool in self.tools]
        if len(names) != len(set(names)):
            raise ValueError("tool names must be unique")
        if self.budget is not None and self.state_store is None:
            raise ValueError("budget needs stateStore: budgets are kept in the shared store")
        if self.budget is not None and self.budget.limits_cost:
            unpriced = [m.name for m in self.models if m.pricing is None]
            if unpriced:
                raise ValueError(f"a cost budget needs pricing on every model; missing: {unpriced}")
        servers = [server.name for server in self.mcp_servers or []]
        if len(servers) != len(set(servers)):
            raise ValueError("MCP server names must be unique")
        return self

    def to_json(self) -> str:
        """Canonical JSON (sorted keys), so equal configs hash equally."""
        return json.dumps(self.to_wire(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes) -> RuntimeConfig:
        """Parse and validate; raises InvalidRuntimeConfig with every problem listed."""
        try:
            return cls.model_validate_json(text)
        except ValidationError as err:
            raise InvalidRuntimeConfig(err) from err


class InvalidRuntimeConfig(ValueError):
    """The runtime config file does not match the contract; the message lists each field."""

    def __init__(self, err: ValidationError) -> None:
        lines = [
            f"  {'.'.join(str(p) for p in e['loc']) or '<root>'}: {e['msg']}" for e in err.errors()
        ]
        super().__init__("invalid runtime config:\n" + "\n".join(lines))
