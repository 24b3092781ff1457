"""Build the runtime config (the operator -> runtime contract) from resolved inputs. Pure.

Called by `children.render`. Secrets appear only as the names of environment variables; the
matching `secretKeyRef` env entries of the Deployment come from the same function, so the two
can never disagree.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from pydantic import ValidationError

from corral.api.agents import ModelSpec
from corral.api.runtimeconfig import (
    AgentCall,
    AuthConfig,
    HttpCall,
    McpServerConfig,
    ModelEndpoint,
    RuntimeConfig,
    RuntimeTool,
    ServerConfig,
    StateStoreConfig,
)
from corral.api.tools import HeaderSet
from corral.operator import errors, naming
from corral.operator.resolving import Resolved, ResolvedMCPServer, ResolvedTool


@dataclasses.dataclass(frozen=True)
class SecretEnv:
    """One environment variable filled from a Secret key by secretKeyRef."""

    env: str
    secret: str
    key: str


def render(resolved: Resolved, drain_seconds: float) -> tuple[RuntimeConfig, list[SecretEnv]]:
    """The runtime config and the Secret-backed env vars it names.

    Raises InvalidSpec when the combination does not fit the runtime contract (e.g. a persona
    prompt plus instructions longer than the runtime accepts).
    """
    spec = resolved.agent.spec
    envs: list[SecretEnv] = []
    models = [
        _model(model, index, envs)
        for index, model in enumerate([spec.model, *(spec.fallbacks or [])])
    ]
    tools = [_tool(tool, index, resolved, envs) for index, tool in enumerate(resolved.tools)]
    servers = [_mcp_server(s, index, envs) for index, s in enumerate(resolved.mcp_servers)]
    auth = None
    if spec.auth is not None:
        ref = spec.auth.api_keys_secret_ref
        envs.append(SecretEnv(naming.AUTH_KEYS_ENV, ref.name, ref.key))
        auth = AuthConfig(api_keys_env=naming.AUTH_KEYS_ENV)
    store = None
    if spec.state_store is not None:
        password_env = None
        password = spec.state_store.password_secret_ref
        if password is not None:
            password_env = naming.STATE_STORE_PASSWORD_ENV
            envs.append(SecretEnv(password_env, password.name, password.key))
        ca_env = None
        ca = spec.state_store.ca_secret_ref
        if ca is not None:
            ca_env = naming.STATE_STORE_CA_ENV
            envs.append(SecretEnv(ca_env, ca.name, ca.key))
        store = StateStoreConfig(
            url=spec.state_store.url,
            password_env=password_env,
            ca_env=ca_env,
            failure_policy=spec.state_store.failure_policy,
        )
    persona = resolved.persona
    prompt_parts = [persona.system_prompt if persona else None, spec.instructions]
    try:
        config = RuntimeConfig(
            agent=resolved.agent.name,
            namespace=resolved.agent.namespace,
            system_prompt="\n\n".join(part for part in prompt_parts if part),
            examples=list(persona.examples or []) if persona else [],
            models=models,
            tools=tools,
            mcp_servers=servers or None,
            max_tool_iterations=spec.max_tool_iterations,
            max_call_depth=spec.max_call_depth,
            request_timeout_seconds=spec.request_timeout_seconds,
            rate_limit=spec.rate_limit,
            auth=auth,
            memory=spec.memory,
            state_store=store,
            budget=spec.budget,
            server=ServerConfig(drain_timeout_seconds=drain_seconds),
        )
    except ValidationError as err:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in err.errors()
        )
        raise errors.InvalidSpec(f"the resulting runtime config is invalid: {problems}") from err
    return config, envs


def _model(model: ModelSpec, index: int, envs: list[SecretEnv]) -> ModelEndpoint:
    env = None
    if model.api_key_secret_ref is not None:
        env = naming.model_key_env(index)
        envs.append(SecretEnv(env, model.api_key_secret_ref.name, model.api_key_secret_ref.key))
    return ModelEndpoint(
        provider=model.provider,
        name=model.name,
        base_url=model.base_url,
        api_key_env=env,
        temperature=model.temperature,
        max_tokens=model.max_tokens,
        timeout_seconds=model.timeout_seconds,
        pricing=model.pricing,
    )


def _mcp_server(server: ResolvedMCPServer, index: int, envs: list[SecretEnv]) -> McpServerConfig:
    """The server as the runtime reaches it; its discovered tools are not part of it (the
    runtime lists them itself), so a change in them never rolls the pods."""
    spec = server.spec
    header_envs = _header_envs(spec, lambda header: naming.mcp_header_env(index, header), envs)
    return McpServerConfig(
        name=server.name,
        url=spec.url,
        transport=spec.transport,
        headers=dict(spec.headers or {}),
        header_envs=header_envs,
        timeout_seconds=spec.timeout_seconds,
        tools=list(server.allowed) if server.allowed is not None else None,
    )


def _tool(tool: ResolvedTool, index: int, resolved: Resolved, envs: list[SecretEnv]) -> RuntimeTool:
    spec = tool.spec
    http = None
    agent = None
    if spec.http is not None:
        header_envs = _header_envs(
            spec.http, lambda header: naming.tool_header_env(index, header), envs
        )
        http = HttpCall(
            url=spec.http.url,
            method=spec.http.method,
            headers=dict(spec.http.headers or {}),
            header_envs=header_envs,
            timeout_seconds=spec.http.timeout_seconds,
            max_response_bytes=spec.http.max_response_bytes,
        )
    if spec.agent is not None:
        agent = AgentCall(
            base_url=naming.endpoint(spec.agent.name, resolved.agent.namespace),
            model=spec.agent.name,
        )
    return RuntimeTool(
        name=tool.function,
        description=spec.description,
        parameters=spec.parameters,
        http=http,
        agent=agent,
    )


def _header_envs(
    headers: HeaderSet, env_name: Callable[[int], str], envs: list[SecretEnv]
) -> dict[str, str]:
    """Header name -> env var for each header from a Secret; the env entries go to `envs`."""
    found: dict[str, str] = {}
    for index, header in enumerate(headers.headers_from or []):
        found[header.name] = env_name(index)
        envs.append(
            SecretEnv(found[header.name], header.secret_key_ref.name, header.secret_key_ref.key)
        )
    return found
