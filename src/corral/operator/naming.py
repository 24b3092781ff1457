"""Deterministic names, labels and annotation keys of everything the operator creates. Pure.

Used by the renderers, by `applying` (ownership checks), by `indexing` (finding the Agent that
owns a child) and by tests. Children carry only the explicit labels below: never the Agent's
own labels or GitOps tracking annotations, so Argo CD or Flux never mistake children for
objects of their own. `app.kubernetes.io/instance` is deliberately not used: Argo CD's default
label tracking treats it as "belongs to the Application of that name".
"""

from __future__ import annotations

import re
from typing import Final

from corral.api import groups

MANAGER: Final = "corral"
COMPONENT: Final = "agent-runtime"
APP_NAME: Final = "corral-agent"

AGENT_LABEL: Final = f"{groups.GROUP}/agent"
CONFIG_HASH: Final = f"{groups.GROUP}/config-hash"
"""Pod-template annotation: hash of the runtime config and referenced Secret data."""
APPLIED_HASH: Final = f"{groups.GROUP}/applied-hash"
"""Child annotation: hash of the manifest last applied, to skip writes when unchanged."""

CONFIG_DIR: Final = "/etc/corral"
CONFIG_PATH: Final = f"{CONFIG_DIR}/{groups.RUNTIME_CONFIG_KEY}"
CONTAINER: Final = "runtime"
PORT_NAME: Final = "http"

MANAGED_SELECTOR: Final = {
    "app.kubernetes.io/managed-by": MANAGER,
    "app.kubernetes.io/name": APP_NAME,
}
"""Label selector matching every child the operator manages (for watching them)."""


def deployment(agent: str) -> str:
    return agent


def service(agent: str) -> str:
    """The Service is named after the Agent: that is what makes the endpoint predictable."""
    return agent


def configmap(agent: str) -> str:
    return f"{agent}-runtime"


def pdb(agent: str) -> str:
    return agent


def hpa(agent: str) -> str:
    return agent


def endpoint(agent: str, namespace: str) -> str:
    """The in-cluster OpenAI base URL of an Agent (DESIGN.md section 2)."""
    return f"http://{service(agent)}.{namespace}.svc:{groups.RUNTIME_PORT}/v1"


def selector_labels(agent: str) -> dict[str, str]:
    """The immutable Deployment selector and the Service selector."""
    return {"app.kubernetes.io/name": APP_NAME, AGENT_LABEL: agent}


def labels(agent: str) -> dict[str, str]:
    """Labels of every child and of the pods."""
    return {
        **selector_labels(agent),
        "app.kubernetes.io/component": COMPONENT,
        "app.kubernetes.io/part-of": "corral",
        "app.kubernetes.io/managed-by": MANAGER,
    }


STATE_STORE_PASSWORD_ENV: Final = "CORRAL_STATE_STORE_PASSWORD"
"""Env var holding spec.stateStore's password (from its Secret by secretKeyRef)."""

STATE_STORE_CA_ENV: Final = "CORRAL_STATE_STORE_CA"
"""Env var holding spec.stateStore's PEM CA for rediss:// (from its Secret by secretKeyRef)."""


def model_key_env(index: int) -> str:
    """Env var holding the API key of spec.model (0) or spec.fallbacks[index - 1]."""
    return f"CORRAL_MODEL_{index}_API_KEY"


def tool_header_env(tool_index: int, header_index: int) -> str:
    """Env var holding the value of a Tool header that comes from a Secret."""
    return f"CORRAL_TOOL_{tool_index}_HEADER_{header_index}"


def mcp_header_env(server_index: int, header_index: int) -> str:
    """Env var holding the value of an MCPServer header that comes from a Secret."""
    return f"CORRAL_MCP_{server_index}_HEADER_{header_index}"


AUTH_KEYS_ENV: Final = "CORRAL_API_KEYS"

_FUNCTION_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


def function_name(tool: str) -> str | None:
    """The function name the model sees for a Tool, or None if the Tool's name cannot be one.

    Tool names are DNS subdomains; dots become underscores (injective, since DNS names have no
    underscores). Names longer than 64 characters cannot be function names at all.
    """
    name = tool.replace(".", "_")
    return name if _FUNCTION_NAME.match(name) else None
