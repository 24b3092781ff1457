"""API server messages placed next to the form field they name (pure)."""

from __future__ import annotations

import pytest

from corral.console import fielderrors, forms


@pytest.mark.parametrize(
    ("form", "cause", "expected"),
    [
        (forms.PERSONA, "spec.systemPrompt", "spec.systemPrompt"),
        (forms.PERSONA, ".spec.systemPrompt", "spec.systemPrompt"),
        (forms.PERSONA, "spec.examples[0].user", "spec.examples"),
        (forms.AGENT, "spec.model.temperature", "spec.model.temperature"),
        (forms.AGENT, "spec.tools[1].name", "spec.tools"),
        (forms.AGENT, "spec.model.apiKeySecretRef.key", "spec.model.apiKeySecretRef.key"),
        (forms.AGENT, "spec.fallbacks[0].name", forms.OTHER),  # no input: the YAML textarea
        (forms.AGENT, "spec.model.pricing.promptPerMillion", forms.OTHER),
        (forms.TOOL, "spec.http.url", "spec.http.url"),
        (forms.TOOL, "spec", fielderrors.GENERAL),  # a rule on the whole spec
        (forms.TOOL, "metadata.name", "metadata.name"),
        (forms.TOOL, "", fielderrors.GENERAL),
    ],
)
def test_a_cause_lands_on_the_deepest_form_field_it_names(
    form: forms.Form, cause: str, expected: str
) -> None:
    assert fielderrors.field_for(form, cause) == expected


def test_causes_of_a_422_are_grouped_per_field() -> None:
    placed = fielderrors.place(
        forms.TOOL,
        'Tool.corral.dev "t1" is invalid: [...]',
        [
            ("spec", "Invalid value: exactly one of spec.http or spec.agent must be set"),
            ("spec.http.url", "Invalid value: every {placeholder} in spec.http.url must name"),
            ("spec.http.timeoutSeconds", "Invalid value: 0: should be greater than or equal to 1"),
        ],
    )
    assert placed[fielderrors.GENERAL] == [
        "Invalid value: exactly one of spec.http or spec.agent must be set"
    ]
    assert placed["spec.http.url"][0].startswith("Invalid value: every {placeholder}")
    # A message that does not name its field gets the field's path in front.
    assert placed["spec.http.timeoutSeconds"] == [
        "spec.http.timeoutSeconds: Invalid value: 0: should be greater than or equal to 1"
    ]


def test_a_rejection_without_causes_is_placed_by_the_path_its_message_names() -> None:
    message = (
        "failed to create typed patch object (ns/a1; corral.dev/v1alpha1, Kind=Agent):"
        " .spec.replicas: expected numeric (int or float), got string"
    )
    assert fielderrors.place(forms.AGENT, message, []) == {"spec.replicas": [message]}
    assert fielderrors.place(forms.AGENT, "etcd is unhappy", []) == {
        fielderrors.GENERAL: ["etcd is unhappy"]
    }
