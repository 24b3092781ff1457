"""Form values to manifests and back (pure)."""

from __future__ import annotations

from typing import Any

import yaml

from corral.console import forms, submissions

TOOL: dict[str, Any] = {
    "apiVersion": "corral.dev/v1alpha1",
    "kind": "Tool",
    "metadata": {"name": "lookup", "namespace": "shop", "resourceVersion": "7"},
    "spec": {
        "description": "Look up an order",
        "parameters": {"type": "object", "properties": {"id": {"type": "string"}}},
        "http": {
            "url": "http://o/{id}",
            "method": "GET",
            "timeoutSeconds": 10,
            "headersFrom": [{"name": "Authorization", "secretKeyRef": {"name": "o", "key": "t"}}],
        },
    },
}


def test_a_live_object_fills_the_form_and_posting_it_back_gives_the_same_spec() -> None:
    values = submissions.values(forms.TOOL, TOOL)
    assert values["spec.http.url"] == "http://o/{id}"
    assert values["spec.http.timeoutSeconds"] == "10"
    assert yaml.safe_load(values[forms.OTHER]) == {
        "http": {"headersFrom": TOOL["spec"]["http"]["headersFrom"]}
    }
    parsed = submissions.manifest(forms.TOOL, values)
    assert parsed.errors == {}
    assert parsed.manifest["spec"] == TOOL["spec"]
    assert parsed.manifest["metadata"] == {"name": "lookup", "namespace": "shop"}
    assert (parsed.manifest["apiVersion"], parsed.manifest["kind"]) == (
        "corral.dev/v1alpha1",
        "Tool",
    )


def test_empty_optional_fields_are_left_out_and_required_ones_are_sent_empty() -> None:
    parsed = submissions.manifest(
        forms.PERSONA,
        {"metadata.name": "tone", "metadata.namespace": "shop", "spec.systemPrompt": ""},
    )
    assert parsed.manifest["spec"] == {"systemPrompt": ""}


def test_browser_line_endings_become_newlines() -> None:
    parsed = submissions.manifest(forms.PERSONA, {"spec.systemPrompt": "Be kind.\r\nBe brief."})
    assert parsed.manifest["spec"]["systemPrompt"] == "Be kind.\nBe brief."


def test_agent_fields_nest_and_tool_names_become_references() -> None:
    parsed = submissions.manifest(
        forms.AGENT,
        {
            "metadata.name": "support",
            "metadata.namespace": "shop",
            "spec.model.provider": "openai",
            "spec.model.name": "gpt-4o-mini",
            "spec.model.temperature": "0.2",
            "spec.model.apiKeySecretRef.name": "openai",
            "spec.model.apiKeySecretRef.key": "api-key",
            "spec.tools": "lookup, refund\nescalate",
            "spec.replicas": "2",
            forms.OTHER: "model:\n  maxTokens: 256\nmemory: {enabled: true}\n",
        },
    )
    assert parsed.errors == {}
    assert parsed.manifest["spec"] == {
        "model": {
            "provider": "openai",
            "name": "gpt-4o-mini",
            "temperature": 0.2,
            "maxTokens": 256,
            "apiKeySecretRef": {"name": "openai", "key": "api-key"},
        },
        "memory": {"enabled": True},
        "tools": [{"name": "lookup"}, {"name": "refund"}, {"name": "escalate"}],
        "replicas": 2,
    }


def test_values_the_form_cannot_read_are_errors_at_their_field() -> None:
    parsed = submissions.manifest(
        forms.AGENT,
        {"spec.replicas": "two", "spec.model.temperature": "warm", forms.OTHER: "memory: [\n"},
    )
    assert parsed.errors["spec.replicas"] == "Replicas must be a whole number, not 'two'"
    assert parsed.errors["spec.model.temperature"].startswith("Temperature must be a number")
    assert parsed.errors[forms.OTHER].startswith("not valid YAML")


def test_the_other_fields_textarea_must_be_a_mapping() -> None:
    parsed = submissions.manifest(forms.AGENT, {forms.OTHER: "- a\n- b\n"})
    assert "mapping" in parsed.errors[forms.OTHER]


def test_a_new_object_has_an_empty_form() -> None:
    assert submissions.values(forms.AGENT, None) == {}
