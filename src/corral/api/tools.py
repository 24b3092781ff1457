"""The Tool kind: a function the model may call, served by HTTP or by another Agent. Pure.

`spec.parameters` is the one free-form part of the API: a JSON Schema. The CRD checks its outer
shape (an object schema whose `required` names are defined properties); offline, the model also
checks it against the JSON Schema meta-schema.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

import jsonschema
from pydantic import (
    ConfigDict,
    Field,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from corral.api.common import AgentName, HttpUrl, Model, SecretKeySelector, cel_regex
from corral.api.personas import ReferencedStatus

HEADER_NAME = r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$"
# `{order_id}` in a URL template; RE2-compatible for the CRD's CEL rule.
PLACEHOLDER = r"\{[^{}]*\}"

MSG_EXACTLY_ONE_TARGET = "exactly one of spec.http or spec.agent must be set"
MSG_PARAMETERS_OBJECT = (
    "spec.parameters.type must be 'object': the model passes the arguments by name"
)
MSG_REQUIRED_DEFINED = (
    "every name in spec.parameters.required must be defined in spec.parameters.properties"
)
MSG_PLACEHOLDERS_DEFINED = (
    "every {placeholder} in spec.http.url must name a property in spec.parameters.properties"
)
MSG_HEADER_NAMES = "headers keys must be HTTP header names (RFC 9110 tokens)"
MSG_HEADER_TWICE = "a header must not be set in both headers and headersFrom"
MSG_UNIQUE_HEADERS_FROM = "headersFrom must not name the same header twice"

MAX_PARAMETERS = 64

# The CRD schema of spec.parameters: the outer shape is typed so CEL rules can read it;
# everything else (each property's schema, $defs, ...) is kept as written.
PARAMETERS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "JSON Schema (draft 2020-12) of the arguments; its type must be object.",
    "default": {"type": "object", "properties": {}},
    "x-kubernetes-preserve-unknown-fields": True,
    "required": ["type"],
    "properties": {
        "type": {"type": "string", "enum": ["object"], "description": "Always object."},
        "properties": {
            "type": "object",
            "maxProperties": MAX_PARAMETERS,
            "description": "Argument name -> JSON Schema of that argument.",
            "additionalProperties": {
                "type": "object",
                "x-kubernetes-preserve-unknown-fields": True,
            },
        },
        "required": {
            "type": "array",
            "maxItems": MAX_PARAMETERS,
            "description": "Names of the arguments the model must pass.",
            "items": {"type": "string", "maxLength": 256},
            "x-kubernetes-list-type": "set",
        },
    },
    "x-kubernetes-validations": [
        {
            "rule": "!has(self.required) || "
            "self.required.all(r, has(self.properties) && r in self.properties)",
            "message": MSG_REQUIRED_DEFINED,
            "fieldPath": ".required",
        }
    ],
}

Parameters = Annotated[dict[str, Any], WithJsonSchema(PARAMETERS_SCHEMA)]


class HeaderFromSecret(Model):
    """An HTTP header whose value comes from a Secret (e.g. Authorization)."""

    name: str = Field(min_length=1, max_length=256, pattern=HEADER_NAME, description="Header name.")
    secret_key_ref: SecretKeySelector = Field(description="The Secret key holding the value.")


class HeaderSet(Model):
    """Static headers and headers from Secrets, sent with every call (HTTP Tools, MCPServers)."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "!has(self.headers) || !has(self.headersFrom) || "
                    "self.headersFrom.all(h, !(h.name in self.headers))",
                    "message": MSG_HEADER_TWICE,
                    "fieldPath": ".headersFrom",
                }
            ]
        }
    )

    headers: dict[str, Annotated[str, Field(max_length=4096)]] | None = Field(
        default=None,
        max_length=32,
        description="Static headers sent with every call; put credentials in headersFrom.",
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": f"self.all(k, k.matches({cel_regex(HEADER_NAME)}))",
                    "message": MSG_HEADER_NAMES,
                }
            ]
        },
    )
    headers_from: list[HeaderFromSecret] | None = Field(
        default=None,
        max_length=16,
        description="Headers whose values come from Secrets.",
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "self.all(h, self.exists_one(g, g.name == h.name))",
                    "message": MSG_UNIQUE_HEADERS_FROM,
                }
            ]
        },
    )

    @field_validator("headers")
    @classmethod
    def _header_names(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        if value is not None and not all(re.fullmatch(HEADER_NAME, name) for name in value):
            raise ValueError(MSG_HEADER_NAMES)
        return value

    @field_validator("headers_from")
    @classmethod
    def _headers_once(
        cls, value: list[HeaderFromSecret] | None, info: ValidationInfo
    ) -> list[HeaderFromSecret] | None:
        # A field validator (not a model one), so the error names headersFrom, as the CRD does.
        from_secrets = [header.name for header in value or []]
        if len(from_secrets) != len(set(from_secrets)):
            raise ValueError(MSG_UNIQUE_HEADERS_FROM)
        if set(from_secrets) & set(info.data.get("headers") or {}):
            raise ValueError(MSG_HEADER_TWICE)
        return value


class HttpTarget(HeaderSet):
    """Call an HTTP endpoint. `{param}` placeholders in the URL are filled from the arguments."""

    url: HttpUrl = Field(
        description="URL template, e.g. http://orders.shop.svc:8080/orders/{order_id}.",
    )
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = Field(
        default="GET",
        description="HTTP method. GET and DELETE send arguments not used in the URL as the query;"
        " the others send them as a JSON body.",
    )
    timeout_seconds: int = Field(default=10, ge=1, le=300, description="Per-call timeout.")
    max_response_bytes: int = Field(
        default=1_048_576,
        ge=1024,
        le=16_777_216,
        description="Responses longer than this are cut before they reach the model.",
    )


class AgentTarget(Model):
    """Call another Agent in the same namespace through its OpenAI-compatible endpoint."""

    name: AgentName = Field(description="Name of the Agent in the same namespace.")


class ToolSpec(Model):
    """Desired state of a Tool."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {"rule": "has(self.http) != has(self.agent)", "message": MSG_EXACTLY_ONE_TARGET},
                {
                    "rule": "!has(self.http) || "
                    f"self.http.url.findAll({cel_regex(PLACEHOLDER)}).all(p, "
                    "has(self.parameters.properties) && "
                    "p.substring(1, p.size() - 1) in self.parameters.properties)",
                    "message": MSG_PLACEHOLDERS_DEFINED,
                    "fieldPath": ".http.url",
                },
            ]
        }
    )

    description: str = Field(
        min_length=1,
        max_length=1024,
        description="What the tool does. The model reads this to decide when to call it.",
    )
    parameters: Parameters = Field(
        default_factory=lambda: {"type": "object", "properties": {}},
        description=PARAMETERS_SCHEMA["description"],
    )
    http: HttpTarget | None = Field(default=None, description="Serve the tool by an HTTP call.")
    agent: AgentTarget | None = Field(default=None, description="Serve the tool by another Agent.")

    @field_validator("parameters")
    @classmethod
    def _parameters_are_a_json_schema(cls, value: dict[str, Any]) -> dict[str, Any]:
        if value.get("type") != "object":
            raise ValueError(MSG_PARAMETERS_OBJECT)
        try:
            jsonschema.Draft202012Validator.check_schema(value)
        except jsonschema.SchemaError as err:
            where = "spec.parameters" + "".join(
                f"[{part}]" if isinstance(part, int) else f".{part}" for part in err.path
            )
            raise ValueError(f"{where} is not valid JSON Schema: {err.message}") from err
        properties = value.get("properties", {})
        if len(properties) > MAX_PARAMETERS or not all(
            isinstance(schema, dict) for schema in properties.values()
        ):
            raise ValueError(
                f"spec.parameters.properties must map at most {MAX_PARAMETERS} names to schemas"
            )
        if not set(value.get("required", [])) <= set(properties):
            raise ValueError(MSG_REQUIRED_DEFINED)
        return value

    @model_validator(mode="after")
    def _exactly_one_target(self) -> ToolSpec:
        if (self.http is None) == (self.agent is None):
            raise ValueError(MSG_EXACTLY_ONE_TARGET)
        return self

    @model_validator(mode="after")
    def _placeholders_are_parameters(self) -> ToolSpec:
        defined = self.parameters.get("properties", {})
        url = self.http.url if self.http is not None else ""
        if any(p[1:-1] not in defined for p in re.findall(PLACEHOLDER, url)):
            raise ValueError(MSG_PLACEHOLDERS_DEFINED)
        return self


class ToolStatus(ReferencedStatus):
    """Observed state of a Tool."""
