"""Resolve an Agent's references into the complete, validated inputs of the renderers.

Reads only, through a `Reader` (the API server in the operator, manifest files in
`corral render`, a dict in unit tests); never writes. Called by `reconciling` and `offline`.
Raises `errors.MissingReference` when referenced objects do not exist (yet) and
`errors.InvalidSpec` for combinations the CRD schema cannot reject. Secret values never reach
this module: the reader hands back a digest of each referenced key, for the pod-template hash.
Specs are parsed once per content (`parse_spec`): a Tool used by hundreds of Agents, or an
Agent indexed and then resumed after a restart, is validated once.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from typing import Any, Final, Protocol, TypeVar, cast

from pydantic import BaseModel, ValidationError

from corral.api.agents import AgentSpec
from corral.api.common import ObjectMeta, SecretKeySelector
from corral.api.mcpservers import MCPServerSpec
from corral.api.personas import PersonaSpec
from corral.api.tools import ToolSpec
from corral.operator import errors, naming

M = TypeVar("M", bound=BaseModel)
SPECS_KEPT: Final = 4096
"""Parsed specs kept (the oldest go first): a few per Agent, Persona and Tool of a large fleet."""
_specs: dict[tuple[type[BaseModel], bytes], BaseModel] = {}


class Reader(Protocol):
    """Where referenced objects come from. Each method returns None when the object is absent."""

    async def persona(self, namespace: str, name: str) -> Mapping[str, Any] | None: ...

    async def tool(self, namespace: str, name: str) -> Mapping[str, Any] | None: ...

    async def agent(self, namespace: str, name: str) -> Mapping[str, Any] | None: ...

    async def mcp_server(self, namespace: str, name: str) -> Mapping[str, Any] | None:
        """The MCPServer's spec, and its `status.tools` when discovery has listed them."""
        ...

    async def secret_digest(self, namespace: str, name: str, key: str) -> str | None:
        """A digest of the key's value, or None when the Secret or the key is missing."""
        ...


@dataclasses.dataclass(frozen=True)
class AgentObject:
    """An Agent as read from the API: identity and parsed spec."""

    name: str
    namespace: str
    uid: str | None
    generation: int
    spec: AgentSpec


@dataclasses.dataclass(frozen=True)
class ResolvedTool:
    name: str
    function: str
    spec: ToolSpec


@dataclasses.dataclass(frozen=True)
class ResolvedMCPServer:
    name: str
    spec: MCPServerSpec
    allowed: tuple[str, ...] | None
    """The Agent's allow-list of the server's tools; None offers every tool."""


@dataclasses.dataclass(frozen=True)
class Resolved:
    """Everything needed to render one Agent's children; no secret values."""

    agent: AgentObject
    persona: PersonaSpec | None
    tools: tuple[ResolvedTool, ...]
    secret_digests: Mapping[tuple[str, str], str]
    """(Secret name, key) -> digest of the value, for every referenced key."""
    mcp_servers: tuple[ResolvedMCPServer, ...] = ()
    not_offered: tuple[str, ...] = ()
    """Allow-listed MCP tools the server's last discovery did not list, as `server/tool`."""


def parse_agent(body: Mapping[str, Any]) -> AgentObject:
    """Parse an Agent object; a spec the models reject raises InvalidSpec naming the fields."""
    meta = ObjectMeta.model_validate(body.get("metadata") or {})
    spec = parse_spec(AgentSpec, body, f"Agent {meta.name!r}")
    return AgentObject(
        name=meta.name,
        namespace=meta.namespace or "default",
        uid=meta.uid,
        generation=meta.generation or 0,
        spec=spec,
    )


def agent_references(spec: AgentSpec) -> list[errors.Reference]:
    """The objects an Agent names directly: its Persona, Tools, MCPServers and Secret keys."""
    refs: list[errors.Reference] = []
    if spec.persona_ref is not None:
        refs.append(errors.Reference("Persona", spec.persona_ref.name))
    refs.extend(errors.Reference("Tool", tool.name) for tool in spec.tools or [])
    refs.extend(errors.Reference("MCPServer", server.name) for server in spec.mcp_servers or [])
    refs.extend(errors.Reference("Secret", sel.name, sel.key) for sel in _agent_secrets(spec))
    return refs


def tool_references(spec: ToolSpec) -> list[errors.Reference]:
    """The objects a Tool names: Secret keys of its headers, or the Agent it calls."""
    refs = [errors.Reference("Secret", sel.name, sel.key) for sel in _tool_secrets(spec)]
    if spec.agent is not None:
        refs.append(errors.Reference("Agent", spec.agent.name))
    return refs


def mcp_server_references(spec: MCPServerSpec) -> list[errors.Reference]:
    """The Secret keys an MCPServer's headers use."""
    return [
        errors.Reference("Secret", h.secret_key_ref.name, h.secret_key_ref.key)
        for h in spec.headers_from or []
    ]


async def resolve(body: Mapping[str, Any], reader: Reader) -> Resolved:
    """Read and validate everything an Agent references; see the module docstring."""
    agent = parse_agent(body)
    missing: list[errors.Reference] = []
    persona = await _persona(agent, reader, missing)
    tools = await _tools(agent, reader, missing)
    servers, not_offered = await _mcp_servers(agent, reader, missing)
    selectors = list(_agent_secrets(agent.spec))
    for tool in tools:
        selectors.extend(_tool_secrets(tool.spec))
    for server in servers:
        selectors.extend(h.secret_key_ref for h in server.spec.headers_from or [])
    digests: dict[tuple[str, str], str] = {}
    for name, key in dict.fromkeys((sel.name, sel.key) for sel in selectors):
        digest = await reader.secret_digest(agent.namespace, name, key)
        if digest is None:
            missing.append(errors.Reference("Secret", name, key))
        else:
            digests[(name, key)] = digest
    if missing:
        raise errors.MissingReference(_unique(missing))
    return Resolved(
        agent=agent,
        persona=persona,
        tools=tuple(tools),
        secret_digests=digests,
        mcp_servers=tuple(servers),
        not_offered=tuple(not_offered),
    )


async def _persona(
    agent: AgentObject, reader: Reader, missing: list[errors.Reference]
) -> PersonaSpec | None:
    ref = agent.spec.persona_ref
    if ref is None:
        return None
    body = await reader.persona(agent.namespace, ref.name)
    if body is None:
        missing.append(errors.Reference("Persona", ref.name))
        return None
    return parse_spec(PersonaSpec, body, f"Persona {ref.name!r}")


async def _tools(
    agent: AgentObject, reader: Reader, missing: list[errors.Reference]
) -> list[ResolvedTool]:
    tools: list[ResolvedTool] = []
    for ref in agent.spec.tools or []:
        body = await reader.tool(agent.namespace, ref.name)
        if body is None:
            missing.append(errors.Reference("Tool", ref.name))
            continue
        spec = parse_spec(ToolSpec, body, f"Tool {ref.name!r}")
        function = naming.function_name(ref.name)
        if function is None:
            raise errors.InvalidSpec(
                f"Tool {ref.name!r}: a tool's name must be at most 64 characters to be offered"
                " to the model as a function name"
            )
        if spec.agent is not None:
            if spec.agent.name == agent.name:
                raise errors.InvalidSpec(
                    f"Tool {ref.name!r} calls Agent {agent.name!r} itself: an agent must not"
                    " be its own tool (every call would recurse)"
                )
            if await reader.agent(agent.namespace, spec.agent.name) is None:
                missing.append(errors.Reference("Agent", spec.agent.name))
        tools.append(ResolvedTool(name=ref.name, function=function, spec=spec))
    return tools


async def _mcp_servers(
    agent: AgentObject, reader: Reader, missing: list[errors.Reference]
) -> tuple[list[ResolvedMCPServer], list[str]]:
    """The Agent's MCPServers, and the allow-listed tools their discovery did not list (only
    checked once a discovery has listed the server's tools)."""
    servers: list[ResolvedMCPServer] = []
    not_offered: list[str] = []
    for ref in agent.spec.mcp_servers or []:
        body = await reader.mcp_server(agent.namespace, ref.name)
        if body is None:
            missing.append(errors.Reference("MCPServer", ref.name))
            continue
        spec = parse_spec(MCPServerSpec, body, f"MCPServer {ref.name!r}")
        allowed = tuple(ref.tools) if ref.tools is not None else None
        listed = (body.get("status") or {}).get("tools")
        if allowed is not None and listed is not None:
            names = {str(tool.get("name")) for tool in listed}
            not_offered.extend(f"{ref.name}/{tool}" for tool in allowed if tool not in names)
        servers.append(ResolvedMCPServer(name=ref.name, spec=spec, allowed=allowed))
    return servers, not_offered


def _agent_secrets(spec: AgentSpec) -> list[SecretKeySelector]:
    models = [spec.model, *(spec.fallbacks or [])]
    selectors = [m.api_key_secret_ref for m in models if m.api_key_secret_ref is not None]
    if spec.auth is not None:
        selectors.append(spec.auth.api_keys_secret_ref)
    if spec.state_store is not None:
        store = spec.state_store
        selectors += [ref for ref in (store.password_secret_ref, store.ca_secret_ref) if ref]
    return selectors


def _tool_secrets(spec: ToolSpec) -> list[SecretKeySelector]:
    if spec.http is None:
        return []
    return [header.secret_key_ref for header in spec.http.headers_from or []]


def parse_spec(model: type[M], body: Mapping[str, Any], what: str) -> M:
    """The object's spec validated by `model` (InvalidSpec naming the fields otherwise), parsed
    once per content: a digest of the spec's JSON costs a few microseconds, validating it (a
    Tool's JSON Schema above all) milliseconds. Callers must not change the model."""
    data = body.get("spec") or {}
    try:
        text = json.dumps(data, sort_keys=True, separators=(",", ":")).encode()
    except (TypeError, ValueError):
        return _parse(model, data, what)  # not JSON: let the model say what is wrong
    key = (model, hashlib.blake2b(text, digest_size=16).digest())
    found = _specs.get(key)
    if found is None:
        found = _specs[key] = _parse(model, data, what)
        if len(_specs) > SPECS_KEPT:
            del _specs[next(iter(_specs))]
    return cast(M, found)


def _parse(model: type[M], data: Mapping[str, Any], what: str) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as err:
        problems = "; ".join(
            f"spec.{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" if e["loc"] else e["msg"]
            for e in err.errors()
        )
        raise errors.InvalidSpec(f"{what}: {problems}") from err


def _unique(refs: list[errors.Reference]) -> list[errors.Reference]:
    return list(dict.fromkeys(refs))
