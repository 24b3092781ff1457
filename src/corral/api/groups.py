"""API group, version, kinds and the names shared by the operator and the runtime. Pure."""

from typing import Final

GROUP: Final = "corral.dev"
VERSION: Final = "v1alpha1"
API_VERSION: Final = f"{GROUP}/{VERSION}"
CATEGORY: Final = "corral"

AGENT: Final = "Agent"
PERSONA: Final = "Persona"
TOOL: Final = "Tool"
MCPSERVER: Final = "MCPServer"

PLURALS: Final = {AGENT: "agents", PERSONA: "personas", TOOL: "tools", MCPSERVER: "mcpservers"}
SHORT_NAMES: Final = {AGENT: ["ag"], PERSONA: ["pers"], TOOL: ["tl"], MCPSERVER: ["mcp"]}

# The runtime config lives under this key in the Agent's ConfigMap and is mounted at this path.
RUNTIME_CONFIG_KEY: Final = "runtime.json"
RUNTIME_PORT: Final = 8080
