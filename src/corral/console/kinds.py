"""The kinds the console shows and edits, declared once, and their URL paths. Pure.

Read by the registry (which kinds to list and watch), the Agent detail page (what an Agent
references), the forms (which kinds may be authored) and the kube client (paths).
"""

from __future__ import annotations

import dataclasses
from typing import Final

from corral.api import groups


@dataclasses.dataclass(frozen=True)
class Kind:
    """A namespaced kind: its name, where it lives in the API, and its URL slug here."""

    kind: str
    api_version: str
    plural: str
    authored: bool = False

    @property
    def prefix(self) -> str:
        core = "/" not in self.api_version
        return f"/api/{self.api_version}" if core else f"/apis/{self.api_version}"

    def collection(self, namespace: str | None = None) -> str:
        """The list URL in `namespace`, or across all namespaces when None."""
        if namespace is None:
            return f"{self.prefix}/{self.plural}"
        return f"{self.prefix}/namespaces/{namespace}/{self.plural}"

    def item(self, namespace: str, name: str) -> str:
        return f"{self.collection(namespace)}/{name}"


AGENT: Final = Kind(groups.AGENT, groups.API_VERSION, groups.PLURALS[groups.AGENT], authored=True)
PERSONA: Final = Kind(
    groups.PERSONA, groups.API_VERSION, groups.PLURALS[groups.PERSONA], authored=True
)
TOOL: Final = Kind(groups.TOOL, groups.API_VERSION, groups.PLURALS[groups.TOOL], authored=True)
MCPSERVER: Final = Kind(groups.MCPSERVER, groups.API_VERSION, groups.PLURALS[groups.MCPSERVER])

REGISTRY: Final = (AGENT, PERSONA, TOOL, MCPSERVER)
"""The kinds of the registry, in the order they are shown."""

BY_PLURAL: Final = {k.plural: k for k in REGISTRY}
BY_KIND: Final = {k.kind: k for k in REGISTRY}

NAMESPACE: Final = Kind("Namespace", "v1", "namespaces")
EVENT: Final = Kind("Event", "v1", "events")
POD: Final = Kind("Pod", "v1", "pods")
DEPLOYMENT: Final = Kind("Deployment", "apps/v1", "deployments")


def namespaces_path() -> str:
    return NAMESPACE.prefix + "/namespaces"
