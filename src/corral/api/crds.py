"""The CustomResourceDefinitions of Agent, Persona, Tool and MCPServer, from the models.

`definitions()` is pure: models in, `apiextensions.k8s.io/v1` CRD dicts out. `run()` is what
`corral crds` calls; it writes YAML to a stream or to one file per CRD (the checked-in `crds/`).
YAML output is byte-stable (sorted keys), so a stale `crds/` shows up as a diff.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, TextIO

import yaml

from corral.api import groups, resources, schemas

Crd = dict[str, Any]

READY = '.status.conditions[?(@.type=="Ready")]'


@dataclasses.dataclass(frozen=True)
class Column:
    """One additionalPrinterColumn; priority 1 shows only with `-o wide`."""

    name: str
    type: str
    json_path: str
    description: str
    priority: int = 0

    def to_wire(self) -> dict[str, Any]:
        column = {
            "name": self.name,
            "type": self.type,
            "jsonPath": self.json_path,
            "description": self.description,
        }
        return column | ({"priority": self.priority} if self.priority else {})


READY_COLUMNS = (
    Column("Ready", "string", f"{READY}.status", "Whether the object is ready."),
    Column("Reason", "string", f"{READY}.reason", "Why it is (not) ready."),
)
AGE = Column("Age", "date", ".metadata.creationTimestamp", "Time since creation.")
USED_BY = Column("Used-By", "string", ".status.usedBy", "Agents that reference it.")

COLUMNS: dict[str, tuple[Column, ...]] = {
    groups.AGENT: (
        *READY_COLUMNS,
        Column("Model", "string", ".spec.model.name", "The primary model."),
        AGE,
        Column("Provider", "string", ".spec.model.provider", "The primary provider.", 1),
        Column("Available", "integer", ".status.availableReplicas", "Pods available.", 1),
        Column("Endpoint", "string", ".status.endpoint", "OpenAI base URL in the cluster.", 1),
    ),
    groups.PERSONA: (*READY_COLUMNS, USED_BY, AGE),
    groups.TOOL: (
        *READY_COLUMNS,
        USED_BY,
        AGE,
        Column("URL", "string", ".spec.http.url", "URL template of an HTTP tool.", 1),
        Column("Agent", "string", ".spec.agent.name", "Agent serving an agent tool.", 1),
    ),
    groups.MCPSERVER: (
        *READY_COLUMNS,
        Column("Tools", "integer", ".status.toolCount", "Tools the server lists."),
        Column("URL", "string", ".spec.url", "The server's MCP endpoint."),
        AGE,
        dataclasses.replace(USED_BY, priority=1),
        Column("Transport", "string", ".spec.transport", "streamable-http or sse.", 1),
    ),
}


def definitions() -> list[Crd]:
    """The CRDs, in kind order: Agent, Persona, Tool, MCPServer."""
    return [definition(kind) for kind in resources.BY_KIND]


def definition(kind: str) -> Crd:
    """The CRD of one kind."""
    plural = groups.PLURALS[kind]
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{plural}.{groups.GROUP}",
            "labels": {"app.kubernetes.io/part-of": "corral"},
        },
        "spec": {
            "group": groups.GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": kind,
                "listKind": f"{kind}List",
                "plural": plural,
                "singular": kind.lower(),
                "shortNames": list(groups.SHORT_NAMES[kind]),
                "categories": [groups.CATEGORY],
            },
            "versions": [
                {
                    "name": groups.VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": [column.to_wire() for column in COLUMNS[kind]],
                    "schema": {"openAPIV3Schema": root_schema(kind)},
                }
            ],
        },
    }


def root_schema(kind: str) -> schemas.Schema:
    """The object's schema: the model's spec and status under the standard header fields."""
    schema = schemas.from_model(resources.BY_KIND[kind])
    properties = schema["properties"]
    properties["apiVersion"] = {
        "type": "string",
        "description": "Versioned schema of this representation of an object.",
    }
    properties["kind"] = {"type": "string", "description": "REST resource this object is."}
    properties["metadata"] = {"type": "object"}
    # kstatus (Flux, Helm 4 --wait) reads an object without status as Current. Defaulting
    # status.observedGeneration to 0 makes a new object InProgress until the operator has
    # observed its generation at least once.
    status = properties["status"]
    status["default"] = {}
    status["properties"]["observedGeneration"]["default"] = 0
    schema["required"] = ["spec"]
    return schema


def file_name(crd: Crd) -> str:
    """`agents.corral.dev.yaml`: the CRD's name, as in crds/."""
    return f"{crd['metadata']['name']}.yaml"


def to_yaml(crd: Crd) -> str:
    """One CRD as a YAML document: sorted keys, long lines kept whole (stable diffs)."""
    return yaml.safe_dump(crd, sort_keys=True, width=1_000_000, allow_unicode=True)


def run(output_dir: Path | None, out: TextIO) -> int:
    """`corral crds`: print multi-document YAML to `out`, or write one file per CRD."""
    generated = definitions()
    if output_dir is None:
        out.write("".join(f"---\n{to_yaml(crd)}" for crd in generated))
        return 0
    output_dir.mkdir(parents=True, exist_ok=True)
    for crd in generated:
        path = output_dir / file_name(crd)
        path.write_text(to_yaml(crd))
        out.write(f"wrote {path}\n")
    return 0
