"""The pydantic models of Agent, Persona and Tool: the examples, wire form and the offline rules
that mirror the CRD's CEL rules. (The invalid-manifest table shared with the API server lives
in tests/integration/api.)"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from corral.api import agents, groups, resources, tools
from corral.api.placement import ResourceRequirements

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


def example_documents() -> list[dict[str, Any]]:
    return [
        doc
        for path in sorted(EXAMPLES.glob("*.yaml"))
        for doc in yaml.safe_load_all(path.read_text())
        if doc
    ]


def test_every_corral_example_validates_and_round_trips_through_the_wire_form() -> None:
    corral = [doc for doc in example_documents() if resources.is_corral(doc)]

    assert {(doc["kind"], doc["metadata"]["name"]) for doc in corral} >= {
        ("Persona", "support-tone"),
        ("Tool", "order-lookup"),
        ("Agent", "support"),
    }
    for doc in corral:
        parsed = resources.parse(doc)
        again = type(parsed.spec).model_validate(parsed.spec.to_wire())
        assert again == parsed.spec


def test_the_demo_agent_talks_to_a_local_keyless_openai_compatible_server() -> None:
    support = next(doc for doc in example_documents() if doc["metadata"]["name"] == "support")
    spec = agents.AgentSpec.model_validate(support["spec"])

    assert spec.model.provider == "openai"
    assert spec.model.name == "gemma-3-270m"
    assert spec.model.base_url == "http://127.0.0.1:8000/v1"
    assert spec.model.api_key_secret_ref is None


def test_the_full_example_uses_every_feature() -> None:
    concierge = resources.parse(
        next(doc for doc in example_documents() if doc["metadata"]["name"] == "concierge")
    )
    assert isinstance(concierge, resources.Agent)
    spec = concierge.spec

    assert spec.fallbacks is not None
    assert spec.fallbacks[0].provider == "gemini"
    assert spec.fallbacks[0].api_key_secret_ref is not None
    assert spec.memory is not None
    assert spec.memory.enabled
    for feature in ("auth", "rate_limit", "affinity", "tolerations", "resources", "node_selector"):
        assert getattr(spec, feature), feature
    kinds_of_tools = {
        "agent" if doc["spec"].get("agent") else "http"
        for doc in example_documents()
        if doc.get("kind") == "Tool"
    }
    assert kinds_of_tools == {"agent", "http"}


def test_example_secrets_hold_only_placeholders() -> None:
    secrets = [doc for doc in example_documents() if doc.get("kind") == "Secret"]

    assert secrets
    for secret in secrets:
        for value in secret["stringData"].values():
            assert "REPLACE_ME" in value


def test_wire_form_is_camel_case_without_unset_fields() -> None:
    spec = agents.AgentSpec.model_validate(
        {"model": {"provider": "openai", "name": "m", "apiKeySecretRef": {"name": "s", "key": "k"}}}
    )

    assert spec.to_wire() == {
        "model": {
            "provider": "openai",
            "name": "m",
            "apiKeySecretRef": {"name": "s", "key": "k"},
            "timeoutSeconds": 60,
        },
        "maxToolIterations": 8,
        "maxCallDepth": 3,
        "requestTimeoutSeconds": 300,
    }


def test_a_fallback_may_reuse_the_model_name_on_another_server() -> None:
    spec = agents.AgentSpec.model_validate(
        {
            "model": {"provider": "openai", "name": "m", "baseURL": "http://a:8000/v1"},
            "fallbacks": [{"provider": "openai", "name": "m", "baseURL": "http://b:8000/v1"}],
        }
    )

    assert spec.fallbacks is not None
    assert spec.fallbacks[0].base_url == "http://b:8000/v1"


@pytest.mark.parametrize(
    "url", ["http://models.svc\n", "http:// spaced.svc/v1", "https://", "file:///etc/passwd"]
)
def test_base_url_must_be_a_whole_http_url(url: str) -> None:
    with pytest.raises(ValidationError, match="must be an http:// or https:// URL"):
        agents.ModelSpec.model_validate({"provider": "openai", "name": "m", "baseURL": url})


def test_quantities_accept_integers_and_kubernetes_suffixes() -> None:
    resources_ = ResourceRequirements.model_validate(
        {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": 2, "memory": "1e9"}}
    )

    assert resources_.limits == {"cpu": 2, "memory": "1e9"}


def test_tool_parameters_must_be_valid_json_schema_beyond_what_the_crd_checks() -> None:
    with pytest.raises(ValidationError, match=r"spec\.parameters\.properties\.id\.type"):
        tools.ToolSpec.model_validate(
            {
                "description": "d",
                "parameters": {"type": "object", "properties": {"id": {"type": "strnig"}}},
                "agent": {"name": "billing"},
            }
        )


def test_tool_parameters_default_to_an_object_without_arguments() -> None:
    spec = tools.ToolSpec.model_validate({"description": "d", "agent": {"name": "billing"}})

    assert spec.parameters == {"type": "object", "properties": {}}


def test_url_placeholders_must_be_parameters() -> None:
    ok = tools.ToolSpec.model_validate(
        {
            "description": "d",
            "parameters": {"type": "object", "properties": {"a": {}, "b": {}}},
            "http": {"url": "http://svc/{a}/items/{b}"},
        }
    )

    assert ok.http is not None
    with pytest.raises(ValidationError, match=tools.MSG_PLACEHOLDERS_DEFINED):
        tools.ToolSpec.model_validate({"description": "d", "http": {"url": "http://svc/{a}"}})


def test_parse_refuses_objects_that_are_not_corral_kinds() -> None:
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}}

    assert not resources.is_corral(secret)
    expected = r"not a corral\.dev/v1alpha1 Agent, Persona, Tool or MCPServer"
    with pytest.raises(ValueError, match=expected):
        resources.parse(secret)


def test_resource_api_version_matches_the_group_constants() -> None:
    field = resources.Resource.model_fields["api_version"]

    assert field.annotation is not None
    assert groups.API_VERSION in str(field.annotation)
