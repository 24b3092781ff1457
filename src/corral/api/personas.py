"""The Persona kind: a reusable system prompt with optional few-shot examples. Pure."""

from __future__ import annotations

from pydantic import Field

from corral.api.common import AgentName, Condition, Model


class FewShotExample(Model):
    """One example exchange shown to the model before the conversation."""

    user: str = Field(min_length=1, max_length=8192, description="What the user says.")
    assistant: str = Field(
        min_length=1, max_length=8192, description="How the agent should answer."
    )


class PersonaSpec(Model):
    """Desired state of a Persona."""

    system_prompt: str = Field(
        min_length=1,
        max_length=32768,
        description="The system prompt every Agent using this Persona starts with.",
    )
    description: str | None = Field(
        default=None, max_length=1024, description="What this Persona is for (for people)."
    )
    examples: list[FewShotExample] | None = Field(
        default=None, max_length=20, description="Few-shot examples sent after the system prompt."
    )


class ReferencedStatus(Model):
    """Status of a Persona or Tool: readiness and which Agents use it."""

    observed_generation: int | None = Field(
        default=None, ge=0, description="The .metadata.generation this status describes."
    )
    conditions: list[Condition] | None = Field(
        default=None,
        max_length=16,
        description="Ready and the reasons it is not.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )
    used_by: list[AgentName] | None = Field(
        default=None,
        max_length=1000,
        description="Names of the Agents in this namespace that reference this object.",
    )


class PersonaStatus(ReferencedStatus):
    """Observed state of a Persona."""
