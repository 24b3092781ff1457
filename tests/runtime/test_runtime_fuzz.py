"""Fuzz every route from the app's own OpenAPI schema: no generated input gets a 5xx.

Schemathesis generates valid and invalid requests from /openapi.json and sends them to the
real server (over a healthy fake upstream), checking each answer: never a server error, a
status the schema documents, the documented content type, and a body matching its schema.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from runtime_harness import Running, agent_config
from schemathesis import checks
from schemathesis.specs.openapi import checks as openapi_checks

from fakes.openai_server import FakeOpenAI

EXAMPLES = 60
CHECKS = [
    checks.not_a_server_error,
    openapi_checks.status_code_conformance,
    openapi_checks.content_type_conformance,
    openapi_checks.response_schema_conformance,
]


@pytest.mark.parametrize(
    "mode", [schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE]
)
def test_no_generated_request_gets_a_server_error(
    serve: Callable[..., Running], upstream: FakeOpenAI, mode: schemathesis.GenerationMode
) -> None:
    agent = serve(agent_config(upstream.base_url, agent="fuzz", memory={"enabled": True}))
    schema = schemathesis.openapi.from_url(f"{agent.url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {f"{op.method.upper()} {op.path}" for op in operations} >= {
        "POST /v1/chat/completions",
        "GET /v1/models",
    }

    if mode is schemathesis.GenerationMode.NEGATIVE:
        # Only the chat route takes input that can be wrong; the others take none.
        operations = [op for op in operations if op.method.upper() == "POST"]
    for operation in operations:

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def exercise(case: schemathesis.Case) -> None:
            case.call_and_validate(base_url=agent.url, checks=CHECKS, timeout=10)

        exercise()
    if mode is schemathesis.GenerationMode.POSITIVE:
        assert upstream.requests, "no generated request reached the model"
