"""Building blocks shared by every kind: the base model, references and conditions. Pure.

Field names are camelCase on the wire (Kubernetes convention) and snake_case in Python.
Unknown fields are rejected offline (`extra="forbid"`), mirroring the API server's pruning
being surfaced as an error by `kubectl apply --validate=strict`.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, JsonValue
from pydantic.alias_generators import to_camel

# RFC 1123 DNS label / subdomain, as Kubernetes validates object names.
DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
# RFC 1035 DNS label: what a Service name must be (starts with a letter).
DNS_1035_LABEL = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"
# Secret data keys: alphanumerics, '-', '_' and '.'.
SECRET_KEY = r"^[-._a-zA-Z0-9]+$"
# An absolute http(s) URL. RE2-compatible, so the CRD's CEL rule uses the same expression.
HTTP_URL = r"^https?://[^\s/$.?#][^\s]*$"

MSG_HTTP_URL = "must be an http:// or https:// URL"


def cel_regex(pattern: str) -> str:
    """`pattern` as a CEL raw string literal, for `matches()` and `findAll()` in CRD rules."""
    quote = "'" if "'" not in pattern else '"'
    if quote in pattern:
        raise ValueError(f"cannot quote {pattern!r} for CEL: it holds both quote characters")
    return f"r{quote}{pattern}{quote}"


def pattern_field(pattern: str, message: str, max_length: int) -> Any:
    """A non-empty string field whose CRD schema checks `pattern` by a CEL rule, so the API
    server says `message` instead of printing the regex (pair it with `matches`)."""
    rules: list[JsonValue] = [{"rule": f"self.matches({cel_regex(pattern)})", "message": message}]
    return Field(
        min_length=1, max_length=max_length, json_schema_extra={"x-kubernetes-validations": rules}
    )


def matches(pattern: str, message: str) -> AfterValidator:
    """The same check offline: `message` unless the whole value matches `pattern`."""

    def check(value: str) -> str:
        if not re.fullmatch(pattern, value):
            raise ValueError(message)
        return value

    return AfterValidator(check)


# Checked by a CEL rule in the CRD (so the API server says what is wrong in words) and by the
# same regular expression here; a plain `pattern` would make the server print the regex instead.
HttpUrl = Annotated[
    str, pattern_field(HTTP_URL, MSG_HTTP_URL, 2048), matches(HTTP_URL, MSG_HTTP_URL)
]


class Model(BaseModel):
    """Base of every API model: camelCase aliases, unknown fields rejected, immutable."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
    )

    def to_wire(self) -> dict[str, Any]:
        """The JSON-compatible, camelCase form with unset optional fields left out."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


ObjectName = Annotated[str, Field(min_length=1, max_length=253, pattern=DNS_SUBDOMAIN)]
# Agents name their Service, so an Agent's name must be an RFC 1035 label.
AgentName = Annotated[str, Field(min_length=1, max_length=63, pattern=DNS_1035_LABEL)]


class LocalObjectReference(Model):
    """A reference to an object of a known kind in the same namespace."""

    name: ObjectName = Field(description="Name of the object in the same namespace.")


class SecretKeySelector(Model):
    """One key of a Secret in the same namespace. Its value reaches pods only as an env var."""

    name: ObjectName = Field(description="Name of the Secret in the same namespace.")
    key: str = Field(
        min_length=1,
        max_length=253,
        pattern=SECRET_KEY,
        description="Key within the Secret's data.",
    )


ConditionStatus = Literal["True", "False", "Unknown"]


class Condition(Model):
    """metav1.Condition: the standard shape Kubernetes tools (kstatus, Argo CD) read."""

    type: str = Field(
        max_length=316,
        pattern=r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
        r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$",
        description="Type of condition in CamelCase, e.g. Ready.",
    )
    status: ConditionStatus = Field(description="True, False or Unknown.")
    reason: str = Field(
        min_length=1,
        max_length=1024,
        pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$",
        description="Machine-readable CamelCase reason for the last transition.",
    )
    message: str = Field(
        default="", max_length=32768, description="Human-readable details of the transition."
    )
    last_transition_time: str = Field(
        json_schema_extra={"format": "date-time"},
        description="When the status last changed (RFC 3339).",
    )
    observed_generation: int | None = Field(
        default=None, ge=0, description="The .metadata.generation the condition was set for."
    )


class ObjectMeta(BaseModel):
    """The parts of metav1.ObjectMeta Corral reads. Other metadata fields are ignored."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")

    name: str
    namespace: str | None = None
    uid: str | None = None
    generation: int | None = None
    resource_version: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
