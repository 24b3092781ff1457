"""When is a write needed (comparing) and when do pods roll (hashing)."""

from __future__ import annotations

from typing import Any

import pytest

from corral.operator import comparing, hashing

LIVE: dict[str, Any] = {
    "metadata": {"name": "a", "labels": {"x": "1"}, "resourceVersion": "9", "uid": "u"},
    "spec": {
        "replicas": 2,
        "template": {
            "spec": {
                "containers": [
                    {
                        "name": "runtime",
                        "image": "img:1",
                        "imagePullPolicy": "IfNotPresent",
                        "terminationMessagePath": "/dev/termination-log",
                        "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}},
                        "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                        "args": ["runtime", "--port", "8080"],
                    },
                    {"name": "sidecar-injected-by-someone", "image": "mesh:1"},
                ],
            }
        },
    },
    "status": {"readyReplicas": 2},
}


def desired(**container: Any) -> dict[str, Any]:
    base = {"name": "runtime", "image": "img:1", "args": ["runtime", "--port", "8080"]}
    return {
        "metadata": {"name": "a", "labels": {"x": "1"}},
        "spec": {"replicas": 2, "template": {"spec": {"containers": [base | container]}}},
    }


@pytest.mark.parametrize(
    ("want", "contained"),
    [
        (desired(), True),
        (desired(resources={"requests": {"cpu": "0.5", "memory": "1024Mi"}}), True),
        (desired(env=[{"name": "B", "value": "2"}]), True),
        (desired(image="img:2"), False),
        (desired(args=["runtime"]), False),
        (desired(resources={"requests": {"cpu": "1"}}), False),
        (desired(env=[{"name": "B", "value": "3"}]), False),
        (desired(env=[{"name": "C", "value": "1"}]), False),
        (desired(livenessProbe={"httpGet": {"path": "/healthz"}}), False),
    ],
    ids=[
        "identical",
        "quantities-equal-by-value",
        "named-list-items-matched-by-name",
        "image-changed",
        "args-changed",
        "quantity-changed",
        "env-value-changed",
        "env-var-missing",
        "probe-removed-by-hand",
    ],
)
def test_desired_fields_must_all_be_present_and_equal_in_the_live_object(
    want: dict[str, Any], contained: bool
) -> None:
    assert comparing.contains(want, LIVE) is contained


def test_an_empty_desired_map_matches_a_field_the_server_dropped() -> None:
    assert comparing.contains({"spec": {"emptyDir": {}}}, {"spec": {}})


def test_booleans_and_numbers_are_not_confused() -> None:
    assert not comparing.contains({"a": True}, {"a": 1})
    assert not comparing.contains({"a": 1}, {"a": "1"})


@pytest.mark.parametrize(
    ("text", "value"),
    [("500m", "0.5"), ("1Gi", "1073741824"), ("2", "2"), ("1.5k", "1500"), ("64Mi", "67108864")],
)
def test_quantities_parse_to_their_value(text: str, value: str) -> None:
    assert comparing.quantity(text) == comparing.quantity(value)


def test_config_hash_changes_with_the_config_and_with_any_referenced_secret_value() -> None:
    digest = hashing.secret_digest("ns", "openai", "key", "c2stMQ==")
    base = hashing.config_hash('{"a":1}', {("openai", "key"): digest})
    assert base == hashing.config_hash('{"a":1}', {("openai", "key"): digest})
    assert base != hashing.config_hash('{"a":2}', {("openai", "key"): digest})
    rotated = hashing.secret_digest("ns", "openai", "key", "c2stMg==")
    assert base != hashing.config_hash('{"a":1}', {("openai", "key"): rotated})


def test_config_hash_does_not_depend_on_the_order_secrets_were_read() -> None:
    one = {("a", "k"): "1", ("b", "k"): "2"}
    other = {("b", "k"): "2", ("a", "k"): "1"}
    assert hashing.config_hash("{}", one) == hashing.config_hash("{}", other)


def test_a_secret_digest_reveals_nothing_of_the_value_and_depends_on_its_coordinates() -> None:
    digest = hashing.secret_digest("ns", "s", "k", "c2VjcmV0")
    assert "c2VjcmV0" not in digest
    assert digest != hashing.secret_digest("other", "s", "k", "c2VjcmV0")
