"""The MCPServer kind: a remote MCP server whose tools Agents may use. Pure.

The operator discovers each server (initialize + tools/list) into `status.tools`; Agents name
servers in `spec.mcpServers`, optionally with an allow-list of tool names. The runtime lists
the tools itself, so the discovered list is for people and for checking allow-lists: a change
in it never rolls an Agent.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from corral.api.common import HttpUrl, Model, ObjectName
from corral.api.personas import ReferencedStatus
from corral.api.tools import HeaderSet

Transport = Literal["streamable-http", "sse"]

# Bounds of what discovery writes into status: an object stays far below etcd's limit even for
# a server listing hundreds of tools with long descriptions.
MAX_STATUS_TOOLS = 256
MAX_TOOL_NAME = 128
MAX_TOOL_DESCRIPTION = 512
MAX_ALLOWED_TOOLS = 128

MSG_UNIQUE_SERVERS = "spec.mcpServers must not name the same MCPServer twice"

ToolName = Annotated[str, Field(min_length=1, max_length=MAX_TOOL_NAME)]


class MCPServerSpec(HeaderSet):
    """Desired state of an MCPServer: where it is and how to talk to it."""

    url: HttpUrl = Field(description="The server's MCP endpoint, e.g. http://orders.shop.svc/mcp.")
    transport: Transport = Field(
        default="streamable-http",
        description="streamable-http (the current MCP transport) or sse (the 2024-11-05 one).",
    )
    timeout_seconds: int = Field(
        default=30,
        ge=1,
        le=600,
        description="Bound of one tool call, and of discovery's handshake and tools/list.",
    )


class DiscoveredTool(Model):
    """One tool as the server lists it (the name and the start of its description)."""

    name: ToolName = Field(description="The tool's name on the server.")
    description: str | None = Field(
        default=None, max_length=MAX_TOOL_DESCRIPTION, description="The tool's description."
    )


class MCPServerStatus(ReferencedStatus):
    """Observed state of an MCPServer: reachability, its tools and the Agents using it."""

    tools: list[DiscoveredTool] | None = Field(
        default=None,
        max_length=MAX_STATUS_TOOLS,
        description=f"The tools the server listed at the last discovery (at most"
        f" {MAX_STATUS_TOOLS}).",
    )
    tool_count: int | None = Field(
        default=None, ge=0, description="How many tools the server listed (all of them)."
    )


class MCPServerRef(Model):
    """An MCPServer in the Agent's namespace, and optionally which of its tools to offer."""

    name: ObjectName = Field(description="Name of the MCPServer in the same namespace.")
    tools: list[ToolName] | None = Field(
        default=None,
        max_length=MAX_ALLOWED_TOOLS,
        description="Allow-list of the server's tool names; omitted means every tool it lists.",
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )
