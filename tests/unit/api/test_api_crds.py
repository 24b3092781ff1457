"""The generated CRDs: what `corral crds` prints, what `crds/` holds, and the schema's shape."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from corral import cli
from corral.api import crds, groups

ROOT = Path(__file__).resolve().parents[3]
REGENERATE = "regenerate with: make crds  (or .venv/bin/corral crds --output-dir crds)"

Node = tuple[str, dict[str, Any]]


def nodes(path: str, schema: dict[str, Any]) -> Iterator[Node]:
    """Every schema node below `schema` with its path (list items `[]`, map values `.*`)."""
    yield path, schema
    for name, sub in schema.get("properties", {}).items():
        yield from nodes(f"{path}.{name}", sub)
    if "items" in schema:
        yield from nodes(f"{path}[]", schema["items"])
    if isinstance(schema.get("additionalProperties"), dict):
        yield from nodes(f"{path}.*", schema["additionalProperties"])


def root(kind: str) -> dict[str, Any]:
    version = crds.definition(kind)["spec"]["versions"][0]
    schema: dict[str, Any] = version["schema"]["openAPIV3Schema"]
    return schema


def all_nodes() -> list[tuple[str, str, dict[str, Any]]]:
    return [(kind, path, node) for kind in groups.PLURALS for path, node in nodes("", root(kind))]


def test_checked_in_crds_match_the_generator() -> None:
    expected = {crds.file_name(crd): crds.to_yaml(crd) for crd in crds.definitions()}
    on_disk = {path.name: path.read_text() for path in (ROOT / "crds").glob("*.yaml")}

    assert sorted(on_disk) == sorted(expected), REGENERATE
    for name, text in expected.items():
        assert on_disk[name] == text, f"crds/{name} is stale; {REGENERATE}"


def test_corral_crds_prints_every_crd_as_one_multi_document_stream(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert cli.main(["crds"]) == 0

    printed = list(yaml.safe_load_all(capsys.readouterr().out))
    assert printed == crds.definitions()
    assert [crd["metadata"]["name"] for crd in printed] == [
        "agents.corral.dev",
        "personas.corral.dev",
        "tools.corral.dev",
        "mcpservers.corral.dev",
    ]


def test_corral_crds_output_dir_writes_one_file_per_crd(tmp_path: Path) -> None:
    out = io.StringIO()

    assert crds.run(output_dir=tmp_path / "crds", out=out) == 0

    written = sorted(path.name for path in (tmp_path / "crds").iterdir())
    assert written == [
        "agents.corral.dev.yaml",
        "mcpservers.corral.dev.yaml",
        "personas.corral.dev.yaml",
        "tools.corral.dev.yaml",
    ]
    assert yaml.safe_load((tmp_path / "crds" / written[0]).read_text()) == crds.definition("Agent")
    assert out.getvalue().count("wrote ") == 4


def test_generation_is_deterministic() -> None:
    assert [crds.to_yaml(crd) for crd in crds.definitions()] == [
        crds.to_yaml(crd) for crd in crds.definitions()
    ]


@pytest.mark.parametrize("kind", ["Agent", "Persona", "Tool"])
def test_kinds_are_namespaced_v1alpha1_with_short_names_and_the_corral_category(kind: str) -> None:
    crd = crds.definition(kind)
    spec = crd["spec"]

    assert crd["apiVersion"] == "apiextensions.k8s.io/v1"
    assert spec["group"] == "corral.dev"
    assert spec["scope"] == "Namespaced"
    assert spec["names"]["categories"] == ["corral"]
    assert spec["names"]["shortNames"]
    assert [v["name"] for v in spec["versions"]] == ["v1alpha1"]
    assert spec["versions"][0]["subresources"] == {"status": {}}
    assert root(kind)["required"] == ["spec"]


def test_agent_columns_show_ready_reason_model_and_age() -> None:
    columns = crds.definition("Agent")["spec"]["versions"][0]["additionalPrinterColumns"]
    default = [(c["name"], c["jsonPath"]) for c in columns if not c.get("priority")]

    assert default == [
        ("Ready", '.status.conditions[?(@.type=="Ready")].status'),
        ("Reason", '.status.conditions[?(@.type=="Ready")].reason'),
        ("Model", ".spec.model.name"),
        ("Age", ".metadata.creationTimestamp"),
    ]


@pytest.mark.parametrize("kind", ["Persona", "Tool"])
def test_persona_and_tool_columns_show_ready_used_by_and_age(kind: str) -> None:
    columns = crds.definition(kind)["spec"]["versions"][0]["additionalPrinterColumns"]

    assert [c["name"] for c in columns if not c.get("priority")] == [
        "Ready",
        "Reason",
        "Used-By",
        "Age",
    ]


@pytest.mark.parametrize("kind", ["Agent", "Persona", "Tool"])
def test_conditions_are_a_list_map_keyed_by_type_in_the_metav1_condition_shape(kind: str) -> None:
    conditions = root(kind)["properties"]["status"]["properties"]["conditions"]

    assert conditions["x-kubernetes-list-type"] == "map"
    assert conditions["x-kubernetes-list-map-keys"] == ["type"]
    item = conditions["items"]
    assert set(item["properties"]) == {
        "type",
        "status",
        "reason",
        "message",
        "lastTransitionTime",
        "observedGeneration",
    }
    assert set(item["required"]) == {"type", "status", "reason", "lastTransitionTime"}
    assert item["properties"]["status"]["enum"] == ["True", "False", "Unknown"]
    assert item["properties"]["lastTransitionTime"]["format"] == "date-time"


def test_every_node_is_typed_and_only_int_or_string_uses_a_union() -> None:
    for kind, path, node in all_nodes():
        where = f"{kind}{path}"
        assert "title" not in node, where
        assert not {"$ref", "allOf", "oneOf", "not", "$defs", "const"} & set(node), where
        if "anyOf" in node:
            assert node.get("x-kubernetes-int-or-string") is True, where
        else:
            assert node.get("type") in {"object", "array", "string", "integer", "number", "boolean"}
        if "additionalProperties" in node:
            assert isinstance(node["additionalProperties"], dict), where
            assert "properties" not in node, where


def test_only_the_tools_json_schema_parameters_are_free_form() -> None:
    free_form = [
        f"{kind}{path}"
        for kind, path, node in all_nodes()
        if node.get("x-kubernetes-preserve-unknown-fields")
    ]

    assert free_form == ["Tool.spec.parameters", "Tool.spec.parameters.properties.*"]


def test_every_list_map_and_string_in_a_spec_is_bounded() -> None:
    """Bounds keep the estimated cost of CEL rules finite; the API server rejects the CRD
    otherwise."""
    unbounded = []
    for kind, path, node in all_nodes():
        if not path.startswith(".spec") or node.get("x-kubernetes-preserve-unknown-fields"):
            continue
        kind_of = node.get("type")
        if (
            (kind_of == "array" and "maxItems" not in node)
            or (
                kind_of == "object"
                and "additionalProperties" in node
                and "maxProperties" not in node
            )
            or (kind_of == "string" and "maxLength" not in node and "enum" not in node)
        ):
            unbounded.append(f"{kind}{path}")

    assert unbounded == []


def test_every_rule_has_a_message_a_person_understands() -> None:
    rules = [
        (f"{kind}{path}", rule)
        for kind, path, node in all_nodes()
        for rule in node.get("x-kubernetes-validations", [])
    ]

    assert len(rules) >= 9
    for where, rule in rules:
        assert set(rule) <= {"rule", "message", "fieldPath"}, where
        assert len(rule["message"].split()) >= 4, f"{where}: {rule['message']!r} is too terse"


def test_cross_field_rules_are_in_the_schema() -> None:
    agent = root("Agent")["properties"]["spec"]
    tool = root("Tool")["properties"]["spec"]
    messages = {
        rule["message"]
        for schema in (
            root("Agent"),
            agent,
            tool,
            agent["properties"]["model"]["properties"]["baseURL"],
        )
        for rule in schema.get("x-kubernetes-validations", [])
    }

    assert "exactly one of spec.http or spec.agent must be set" in messages
    assert "must be an http:// or https:// URL" in messages
    assert any(
        message.startswith("each entry of spec.fallbacks must differ") for message in messages
    )
    assert any(message.startswith("metadata.name of an Agent") for message in messages)


def test_defaults_are_in_the_schema() -> None:
    agent = root("Agent")["properties"]["spec"]["properties"]
    tool = root("Tool")["properties"]["spec"]["properties"]

    assert agent["model"]["properties"]["timeoutSeconds"]["default"] == 60
    assert agent["maxToolIterations"]["default"] == 8
    assert agent["memory"]["properties"]["maxMessages"]["default"] == 50
    assert tool["http"]["properties"]["method"]["default"] == "GET"
    assert tool["parameters"]["default"] == {"type": "object", "properties": {}}
