"""Tracing turns on only when the standard OTEL_* variables ask for an OTLP endpoint."""

from __future__ import annotations

import pytest

from corral.runtime import tracing

ENDPOINT = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}


@pytest.mark.parametrize(
    ("env", "exports"),
    [
        ({}, False),
        (ENDPOINT, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"}, True),
        ({**ENDPOINT, "OTEL_SDK_DISABLED": "true"}, False),
        ({**ENDPOINT, "OTEL_TRACES_EXPORTER": "none"}, False),
    ],
)
def test_export_follows_the_otel_variables(env: dict[str, str], exports: bool) -> None:
    traces = tracing.Tracing.from_env(env, "support", "shop")
    try:
        assert (traces.provider is not None) == exports
    finally:
        traces.shutdown()


@pytest.mark.parametrize(
    ("env", "endpoint"),
    [
        (ENDPOINT, "http://collector:4318/v1/traces"),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318/"}, "http://c:4318/v1/traces"),
        ({**ENDPOINT, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://t/x"}, "http://t/x"),
    ],
)
def test_the_traces_endpoint_is_derived_as_the_exporter_spec_says(
    env: dict[str, str], endpoint: str
) -> None:
    assert tracing.traces_endpoint(env) == endpoint


def test_the_service_is_named_after_the_agent_unless_set() -> None:
    named = tracing.Tracing.from_env({**ENDPOINT, "OTEL_SERVICE_NAME": "billing"}, "a", "shop")
    default = tracing.Tracing.from_env(ENDPOINT, "support", "shop")
    try:
        assert named.provider is not None
        assert default.provider is not None
        assert named.provider.resource.attributes["service.name"] == "billing"
        assert default.provider.resource.attributes["service.name"] == "corral-agent-support"
        assert default.provider.resource.attributes["k8s.namespace.name"] == "shop"
    finally:
        named.shutdown()
        default.shutdown()
