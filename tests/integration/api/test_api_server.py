"""The generated CRDs on the real API server: examples apply, defaults fill in, unknown fields
are pruned, status is only writable through /status, and kubectl shows the printer columns."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from api_kubectl import Api

from corral.api import resources
from localcluster import handles

pytestmark = pytest.mark.cluster

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"

MINIMAL_AGENT = {
    "apiVersion": "corral.dev/v1alpha1",
    "kind": "Agent",
    "metadata": {"name": "minimal"},
    "spec": {"model": {"provider": "openai", "name": "gemma-3-270m"}, "memory": {}},
}
MINIMAL_TOOL = {
    "apiVersion": "corral.dev/v1alpha1",
    "kind": "Tool",
    "metadata": {"name": "ping"},
    "spec": {"description": "Ping the service.", "http": {"url": "http://svc.ns:8080/ping"}},
}
READY_STATUS: dict[str, Any] = {
    "observedGeneration": 1,
    "endpoint": "http://minimal.ns.svc:8080/v1",
    "conditions": [
        {
            "type": "Ready",
            "status": "True",
            "reason": "Available",
            "message": "1/1 replicas available",
            "lastTransitionTime": "2026-01-01T00:00:00Z",
            "observedGeneration": 1,
        }
    ],
}


def test_crds_are_established_with_structural_schemas(
    cluster: handles.Cluster, corral_crds: list[str]
) -> None:
    for name in corral_crds:
        crd = json.loads(cluster.kubectl("get", "crd", name, "-o", "json").stdout)
        conditions = {c["type"]: c["status"] for c in crd["status"]["conditions"]}

        assert conditions["Established"] == "True", name
        assert conditions.get("NonStructuralSchema", "False") == "False", name


def test_every_example_applies_cleanly_with_server_side_apply(api: Api) -> None:
    documents = [
        doc
        for path in sorted(EXAMPLES.glob("*.yaml"))
        for doc in yaml.safe_load_all(path.read_text())
    ]

    result = api.kubectl("apply", "--server-side", "-f", str(EXAMPLES))

    assert "Warning" not in result.stderr, result.stderr
    for doc in documents:
        if resources.is_corral(doc):
            applied = api.get(f"{doc['kind'].lower()}/{doc['metadata']['name']}")
            assert _kept(doc["spec"], applied["spec"]), (doc["spec"], applied["spec"])
    assert {
        resources.parse(doc).metadata.name for doc in documents if resources.is_corral(doc)
    } >= {
        "support",
        "support-tone",
        "order-lookup",
    }


def test_defaults_appear_on_objects_read_back(api: Api) -> None:
    api.apply(MINIMAL_AGENT, MINIMAL_TOOL)

    agent = api.get("agent/minimal")["spec"]
    tool = api.get("tool/ping")["spec"]

    assert agent["model"]["timeoutSeconds"] == 60
    assert agent["maxToolIterations"] == 8
    assert agent["memory"] == {
        "enabled": False,
        "maxMessages": 50,
        "maxTokens": 8000,
        "ttlSeconds": 3600,
        "maxSessions": 10000,
    }
    assert tool["parameters"] == {"type": "object", "properties": {}}
    assert tool["http"] == {
        "url": "http://svc.ns:8080/ping",
        "method": "GET",
        "timeoutSeconds": 10,
        "maxResponseBytes": 1048576,
    }


def test_objects_read_back_validate_against_the_models(api: Api) -> None:
    api.apply(MINIMAL_AGENT, MINIMAL_TOOL)

    for name in ("agent/minimal", "tool/ping"):
        parsed = resources.parse(api.get(name))

        assert parsed.metadata.name == name.split("/")[1]


def test_unknown_fields_are_pruned(api: Api) -> None:
    agent = json.loads(json.dumps(MINIMAL_AGENT))
    agent["spec"]["colour"] = "blue"
    agent["spec"]["model"]["flavour"] = "vanilla"
    agent["spec"]["memory"]["forever"] = True

    # A plain create without field validation: the server accepts the object and prunes.
    api.kubectl("create", "--validate=false", "-f", "-", input=json.dumps(agent))

    spec = api.get("agent/minimal")["spec"]
    assert "colour" not in spec
    assert "flavour" not in spec["model"]
    assert "forever" not in spec["memory"]
    assert spec["model"]["name"] == "gemma-3-270m"


def test_strict_field_validation_and_server_side_apply_name_an_unknown_field(api: Api) -> None:
    agent = json.loads(json.dumps(MINIMAL_AGENT))
    agent["spec"]["model"]["flavour"] = "vanilla"

    created = api.kubectl("create", "-f", "-", input=json.dumps(agent), check=False)
    applied = api.apply(agent, check=False)

    assert created.returncode != 0
    assert 'unknown field "spec.model.flavour"' in created.stderr
    assert applied.returncode != 0
    assert ".spec.model.flavour: field not declared in schema" in applied.stderr


def test_status_is_ignored_on_the_main_resource_and_written_through_the_status_subresource(
    api: Api,
) -> None:
    marker = "http://written-through-the-main-resource:8080/v1"
    with_status = {**MINIMAL_AGENT, "status": {**READY_STATUS, "endpoint": marker}}
    api.apply(with_status)
    api.kubectl(
        "patch", "agent/minimal", "--type=merge", "-p", json.dumps({"status": {"endpoint": marker}})
    )

    assert api.get("agent/minimal").get("status", {}).get("endpoint") != marker

    api.kubectl(
        "patch",
        "agent/minimal",
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps({"status": READY_STATUS}),
    )

    status = api.get("agent/minimal")["status"]
    assert status["endpoint"] == READY_STATUS["endpoint"]
    assert status["conditions"][0]["reason"] == "Available"


def test_status_writes_are_validated_too(api: Api) -> None:
    api.apply(MINIMAL_AGENT)
    bad = {"conditions": [{**READY_STATUS["conditions"][0], "status": "Maybe"}]}

    result = api.kubectl(
        "patch",
        "agent/minimal",
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps({"status": bad}),
        check=False,
    )

    assert result.returncode != 0
    assert "status.conditions[0].status" in result.stderr


def test_kubectl_get_shows_ready_reason_model_and_age(api: Api) -> None:
    api.apply(MINIMAL_AGENT)
    api.kubectl(
        "patch",
        "agent/minimal",
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps({"status": READY_STATUS}),
    )

    header, row = api.kubectl("get", "agents").stdout.splitlines()

    assert header.split() == ["NAME", "READY", "REASON", "MODEL", "AGE"]
    assert row.split()[:4] == ["minimal", "True", "Available", "gemma-3-270m"]


def test_short_names_and_the_corral_category_list_every_kind(api: Api) -> None:
    persona = {
        "apiVersion": "corral.dev/v1alpha1",
        "kind": "Persona",
        "metadata": {"name": "terse"},
        "spec": {"systemPrompt": "Be terse."},
    }
    api.apply(MINIMAL_AGENT, MINIMAL_TOOL, persona)

    by_category = api.kubectl("get", "corral", "-o", "name").stdout.split()
    by_short_name = api.kubectl("get", "ag,pers,tl", "-o", "name").stdout.split()

    expected = ["agent.corral.dev/minimal", "persona.corral.dev/terse", "tool.corral.dev/ping"]
    assert sorted(by_category) == expected
    assert sorted(by_short_name) == expected


def _kept(written: object, stored: object) -> bool:
    """Whether everything written is stored unchanged (the server may add defaults)."""
    if isinstance(written, dict) and isinstance(stored, dict):
        return all(key in stored and _kept(value, stored[key]) for key, value in written.items())
    return written == stored
