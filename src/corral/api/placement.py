"""Pod placement and sizing: the subset of core/v1 pod fields an Agent may set. Pure.

Modelled field by field (not as free-form objects) so the CRD schema stays structural and
the API server rejects typos in an Agent's affinity the same way it would in a Deployment's.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, Field

from corral.api.common import Model

# resource.Quantity's serialised form, as the API server checks it for core/v1 resources.
QUANTITY = (
    r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))"
    r"(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)


def _quantity(value: int | str) -> int | str:
    if isinstance(value, str) and not re.fullmatch(QUANTITY, value):
        raise ValueError(f"{value!r} is not a Kubernetes quantity such as 500m, 1Gi or 2")
    return value


# A resource.Quantity: "500m", "1Gi", 2. Marked int-or-string for the CRD generator.
Quantity = Annotated[
    int | str,
    Field(json_schema_extra={"x-kubernetes-int-or-string": True, "pattern": QUANTITY}),
    AfterValidator(_quantity),
]


class ResourceRequirements(Model):
    """CPU and memory requests and limits of the runtime container."""

    requests: dict[str, Quantity] | None = Field(
        default=None,
        max_length=8,
        description="Minimum resources, e.g. {cpu: 100m, memory: 128Mi}.",
    )
    limits: dict[str, Quantity] | None = Field(
        default=None, max_length=8, description="Maximum resources, e.g. {memory: 512Mi}."
    )


class Toleration(Model):
    """core/v1 Toleration: lets the pods run on nodes with a matching taint."""

    key: str | None = Field(
        default=None, max_length=316, description="Taint key; empty with Exists matches all."
    )
    operator: Literal["Exists", "Equal"] | None = Field(
        default=None, description="Exists or Equal (the default)."
    )
    value: str | None = Field(default=None, max_length=63, description="Taint value for Equal.")
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = Field(
        default=None, description="Taint effect to match; empty matches all."
    )
    toleration_seconds: int | None = Field(
        default=None, description="How long a NoExecute taint is tolerated."
    )


Values = list[Annotated[str, Field(max_length=316)]]
# Label values are at most 63 characters (keys are checked by the API server on the pods).
Labels = dict[str, Annotated[str, Field(max_length=63)]]


class LabelSelectorRequirement(Model):
    """One label condition of a LabelSelector."""

    key: str = Field(max_length=316, description="Label key.")
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"] = Field(
        description="How the key relates to the values."
    )
    values: Values | None = Field(
        default=None, max_length=64, description="Values for In and NotIn."
    )


class LabelSelector(Model):
    """metav1.LabelSelector: pods matching all labels and expressions."""

    match_labels: Labels | None = Field(
        default=None, max_length=64, description="Labels the pods must carry."
    )
    match_expressions: list[LabelSelectorRequirement] | None = Field(
        default=None, max_length=32, description="Conditions the pods' labels must meet."
    )


class NodeSelectorRequirement(Model):
    """One condition on a node label or field."""

    key: str = Field(max_length=316, description="Node label key or field name.")
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt"] = Field(
        description="How the key relates to the values."
    )
    values: Values | None = Field(
        default=None, max_length=64, description="Values for In, NotIn, Gt and Lt."
    )


class NodeSelectorTerm(Model):
    """Conditions a node must meet (all of them)."""

    match_expressions: list[NodeSelectorRequirement] | None = Field(
        default=None, max_length=32, description="Conditions on node labels."
    )
    match_fields: list[NodeSelectorRequirement] | None = Field(
        default=None, max_length=32, description="Conditions on node fields."
    )


class NodeSelector(Model):
    """Nodes matching any of the terms."""

    node_selector_terms: list[NodeSelectorTerm] = Field(
        max_length=32, description="Terms; a node must match at least one."
    )


class PreferredSchedulingTerm(Model):
    """A node preference with a weight."""

    weight: int = Field(ge=1, le=100, description="Weight of this preference.")
    preference: NodeSelectorTerm = Field(description="The nodes preferred.")


class NodeAffinity(Model):
    """Which nodes the pods may or should run on."""

    required_during_scheduling_ignored_during_execution: NodeSelector | None = Field(
        default=None, description="Nodes the pods must run on."
    )
    preferred_during_scheduling_ignored_during_execution: list[PreferredSchedulingTerm] | None = (
        Field(default=None, max_length=32, description="Nodes the pods should run on.")
    )


class PodAffinityTerm(Model):
    """Pods (selected by labels, in some namespaces) sharing a topology domain."""

    label_selector: LabelSelector | None = Field(default=None, description="The pods meant.")
    namespace_selector: LabelSelector | None = Field(
        default=None, description="Namespaces of those pods; unset means this namespace."
    )
    namespaces: list[Annotated[str, Field(max_length=63)]] | None = Field(
        default=None, max_length=64, description="Namespaces of those pods, by name."
    )
    topology_key: str = Field(
        min_length=1, max_length=316, description="Node label defining the domain."
    )


class WeightedPodAffinityTerm(Model):
    """A pod (anti-)affinity preference with a weight."""

    weight: int = Field(ge=1, le=100, description="Weight of this preference.")
    pod_affinity_term: PodAffinityTerm = Field(description="The term.")


class PodAffinity(Model):
    """Pods to run near (affinity) or away from (anti-affinity)."""

    required_during_scheduling_ignored_during_execution: list[PodAffinityTerm] | None = Field(
        default=None, max_length=32, description="Terms that must hold."
    )
    preferred_during_scheduling_ignored_during_execution: list[WeightedPodAffinityTerm] | None = (
        Field(default=None, max_length=32, description="Terms that should hold.")
    )


class Affinity(Model):
    """core/v1 Affinity: node affinity, pod affinity and pod anti-affinity."""

    node_affinity: NodeAffinity | None = Field(default=None, description="Node affinity.")
    pod_affinity: PodAffinity | None = Field(default=None, description="Pod affinity.")
    pod_anti_affinity: PodAffinity | None = Field(default=None, description="Pod anti-affinity.")
