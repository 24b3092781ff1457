"""The authoring forms of Persona, Tool and Agent, declared once from corral.api's models. Pure.

Each `Field` is named by the wire path it sets (`spec.model.name`); that one name is the HTML
input's name, the key of the value parsed from the form (`submissions`), and what an API
server cause (`spec.model.name: Invalid value ...`) is matched against (`fielderrors`). Help
texts are the models' own field descriptions, so the forms say what the CRD reference says.
The rarer fields go in one YAML textarea (`OTHER`) merged into the spec.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Final, Literal

from pydantic import BaseModel

from corral.api import resources
from corral.console import kinds

Widget = Literal["text", "textarea", "int", "float", "select", "yaml", "refs", "other"]
OTHER: Final = "spec.*"
"""The path of the YAML textarea holding every spec field the form has no input for."""


@dataclasses.dataclass(frozen=True)
class Field:
    path: str
    label: str
    widget: Widget = "text"
    required: bool = False  # sent even when empty, so the API server names what is missing
    choices: tuple[str, ...] = ()
    help: str = ""
    placeholder: str = ""

    @property
    def segments(self) -> tuple[str, ...]:
        return tuple(self.path.split("."))

    @property
    def dom_id(self) -> str:
        return "f-" + self.path.replace(".", "-").replace("*", "other")


@dataclasses.dataclass(frozen=True)
class Form:
    kind: kinds.Kind
    fields: tuple[Field, ...]
    title: str

    def field(self, path: str) -> Field | None:
        return next((f for f in self.fields if f.path == path), None)


def _described(model: type[BaseModel], path: str) -> str:
    """The description of the model field at wire path `path` (e.g. spec.model.name)."""
    current: type[BaseModel] | None = model
    description = ""
    for segment in path.split("."):
        if current is None:
            return description
        info = next(
            (f for name, f in current.model_fields.items() if segment in (f.alias, name)), None
        )
        if info is None:
            return description
        description = info.description or ""
        current = _model_in(info.annotation)
    return description


def _model_in(annotation: object) -> type[BaseModel] | None:
    """The pydantic model inside `X`, `X | None` or `list[X]`, if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) in (typing.Union, types.UnionType, list):
        for arg in typing.get_args(annotation):
            found = _model_in(arg)
            if found is not None:
                return found
    return None


def _fields(model: type[BaseModel], *fields: Field) -> tuple[Field, ...]:
    return tuple(
        f
        if f.help or f.widget == "other"
        else dataclasses.replace(f, help=_described(model, f.path))
        for f in fields
    )


NAME = Field("metadata.name", "Name", required=True, help="DNS label, unique in the namespace.")
NAMESPACE = Field("metadata.namespace", "Namespace", required=True)
OTHER_FIELD = Field(
    OTHER,
    "Other spec fields (YAML)",
    widget="other",
    help="Any other field of the spec, as YAML; see docs/reference.md. Left empty: none.",
)

PERSONA: Final = Form(
    kinds.PERSONA,
    _fields(
        resources.Persona,
        NAME,
        NAMESPACE,
        Field("spec.description", "Description"),
        Field("spec.systemPrompt", "System prompt", widget="textarea", required=True),
        Field(
            "spec.examples",
            "Few-shot examples (YAML)",
            widget="yaml",
            placeholder="- user: Where is my order?\n  assistant: Which order number?",
        ),
        OTHER_FIELD,
    ),
    "Persona",
)

TOOL: Final = Form(
    kinds.TOOL,
    _fields(
        resources.Tool,
        NAME,
        NAMESPACE,
        Field("spec.description", "Description", widget="textarea", required=True),
        Field(
            "spec.parameters",
            "Parameters (JSON Schema as YAML)",
            widget="yaml",
            placeholder="type: object\nproperties:\n  order_id: {type: string}\n"
            "required: [order_id]",
        ),
        Field("spec.http.url", "HTTP URL", placeholder="http://orders.shop.svc:8080/orders/{id}"),
        Field(
            "spec.http.method",
            "HTTP method",
            widget="select",
            choices=("", "GET", "POST", "PUT", "PATCH", "DELETE"),
        ),
        Field("spec.http.timeoutSeconds", "HTTP timeout (seconds)", widget="int"),
        Field("spec.agent.name", "Or: call the Agent"),
        OTHER_FIELD,
    ),
    "Tool",
)

AGENT: Final = Form(
    kinds.AGENT,
    _fields(
        resources.Agent,
        NAME,
        NAMESPACE,
        Field("spec.personaRef.name", "Persona"),
        Field("spec.instructions", "Instructions", widget="textarea"),
        Field(
            "spec.model.provider",
            "Provider",
            widget="select",
            required=True,
            choices=("openai", "gemini"),
        ),
        Field("spec.model.name", "Model", required=True, placeholder="gpt-4o-mini"),
        Field("spec.model.baseURL", "Base URL"),
        Field("spec.model.apiKeySecretRef.name", "API key Secret"),
        Field("spec.model.apiKeySecretRef.key", "API key Secret key"),
        Field("spec.model.temperature", "Temperature", widget="float"),
        Field(
            "spec.tools",
            "Tools",
            widget="refs",
            help="Names of Tools in the namespace, comma separated.",
        ),
        Field("spec.replicas", "Replicas", widget="int"),
        Field("spec.rateLimit.requestsPerMinute", "Requests per minute", widget="int"),
        Field("spec.rateLimit.tokensPerMinute", "Tokens per minute", widget="int"),
        OTHER_FIELD,
    ),
    "Agent",
)

BY_PLURAL: Final = {f.kind.plural: f for f in (AGENT, PERSONA, TOOL)}
