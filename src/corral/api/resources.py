"""Whole Corral objects (apiVersion, kind, metadata, spec, status) and parsing by kind. Pure.

Read by `corral render` (offline manifests), by the tests that hold the models and the API
server to the same verdicts, and by the CRD generator for rules on the object's root (which
in a CRD may read `metadata.name`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import ConfigDict, Field, model_validator

from corral.api import groups
from corral.api.agents import AgentSpec, AgentStatus
from corral.api.common import DNS_1035_LABEL, DNS_LABEL, Model, ObjectMeta, cel_regex
from corral.api.mcpservers import MCPServerSpec, MCPServerStatus
from corral.api.personas import PersonaSpec, PersonaStatus
from corral.api.tools import ToolSpec, ToolStatus

MSG_AGENT_NAME = (
    "metadata.name of an Agent must be a DNS label of at most 63 characters that starts with"
    " a letter (lowercase letters, digits, '-'): it names the Agent's Service"
)

MSG_TOOL_NAME = (
    "metadata.name of a Tool must be at most 64 characters without dots (lowercase letters,"
    " digits, '-'): the model calls the tool by this name"
)


def _name_rule(max_length: int, pattern: str, message: str) -> dict[str, Any]:
    """A CEL rule on the object's root: the one place a CRD may constrain metadata.name."""
    return {
        "rule": f"self.metadata.name.size() <= {max_length} && "
        f"self.metadata.name.matches({cel_regex(pattern)})",
        "message": message,
    }


def _check_name(name: str, max_length: int, pattern: str, message: str) -> None:
    if len(name) > max_length or not re.fullmatch(pattern, name):
        raise ValueError(message)


class Resource(Model):
    """Fields every Corral object has."""

    api_version: Literal["corral.dev/v1alpha1"] = Field(description="corral.dev/v1alpha1.")
    metadata: ObjectMeta = Field(description="Standard object metadata.")


class Agent(Resource):
    """An Agent: one model-backed assistant served over the OpenAI API."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [_name_rule(63, DNS_1035_LABEL, MSG_AGENT_NAME)]
        }
    )

    kind: Literal["Agent"]
    spec: AgentSpec
    status: AgentStatus | None = None

    @model_validator(mode="after")
    def _name_is_a_service_name(self) -> Agent:
        _check_name(self.metadata.name, 63, DNS_1035_LABEL, MSG_AGENT_NAME)
        return self


class Persona(Resource):
    """A Persona: a reusable system prompt."""

    kind: Literal["Persona"]
    spec: PersonaSpec
    status: PersonaStatus | None = None


class Tool(Resource):
    """A Tool: a function an Agent's model may call."""

    model_config = ConfigDict(
        json_schema_extra={"x-kubernetes-validations": [_name_rule(64, DNS_LABEL, MSG_TOOL_NAME)]}
    )

    kind: Literal["Tool"]
    spec: ToolSpec
    status: ToolStatus | None = None

    @model_validator(mode="after")
    def _name_is_a_function_name(self) -> Tool:
        _check_name(self.metadata.name, 64, DNS_LABEL, MSG_TOOL_NAME)
        return self


class MCPServer(Resource):
    """An MCPServer: a remote MCP server whose tools Agents may use."""

    kind: Literal["MCPServer"]
    spec: MCPServerSpec
    status: MCPServerStatus | None = None


Object = Agent | Persona | Tool | MCPServer
BY_KIND: dict[str, type[Agent] | type[Persona] | type[Tool] | type[MCPServer]] = {
    groups.AGENT: Agent,
    groups.PERSONA: Persona,
    groups.TOOL: Tool,
    groups.MCPSERVER: MCPServer,
}


def is_corral(manifest: Mapping[str, Any]) -> bool:
    """Whether a decoded manifest is one of Corral's kinds (any other object is not ours)."""
    return manifest.get("apiVersion") == groups.API_VERSION and manifest.get("kind") in BY_KIND


def parse(manifest: Mapping[str, Any]) -> Object:
    """Validate a decoded manifest of a Corral kind; raises pydantic.ValidationError.

    Raises ValueError for objects that are not Corral kinds; check with is_corral() first.
    """
    if not is_corral(manifest):
        raise ValueError(
            f"not a {groups.API_VERSION} Agent, Persona, Tool or MCPServer: "
            f"apiVersion={manifest.get('apiVersion')!r} kind={manifest.get('kind')!r}"
        )
    return BY_KIND[str(manifest["kind"])].model_validate(manifest)
