"""The runtime config: the one document the operator writes and `corral runtime` reads."""

from __future__ import annotations

import json
from typing import Any

import pytest

from corral.api.runtimeconfig import InvalidRuntimeConfig, RuntimeConfig

FULL: dict[str, Any] = {
    "agent": "concierge",
    "namespace": "shop",
    "systemPrompt": "You are a concise support engineer.",
    "examples": [{"user": "Where is 1042?", "assistant": "Let me check."}],
    "models": [
        {
            "provider": "openai",
            "name": "gemma-3-270m",
            "baseURL": "http://127.0.0.1:8000/v1",
            "temperature": 0.2,
            "maxTokens": 256,
            "timeoutSeconds": 30,
        },
        {"provider": "gemini", "name": "gemini-2.5-flash", "apiKeyEnv": "CORRAL_MODEL_1_API_KEY"},
    ],
    "tools": [
        {
            "name": "order-lookup",
            "description": "Look up an order.",
            "parameters": {"type": "object", "properties": {"order_id": {"type": "string"}}},
            "http": {
                "url": "http://orders.shop.svc:8080/orders/{order_id}",
                "headers": {"Accept": "application/json"},
                "headerEnvs": {"Authorization": "CORRAL_TOOL_0_AUTHORIZATION"},
            },
        },
        {
            "name": "ask-billing",
            "description": "Ask billing.",
            "parameters": {"type": "object", "properties": {}},
            "agent": {"baseURL": "http://billing.shop.svc:8080/v1", "model": "billing"},
        },
    ],
    "maxToolIterations": 6,
    "rateLimit": {"requestsPerMinute": 60, "tokensPerMinute": 100000},
    "auth": {"apiKeysEnv": "CORRAL_API_KEYS"},
    "memory": {"enabled": True, "maxMessages": 20},
    "server": {"drainTimeoutSeconds": 10},
}


def test_runtime_config_round_trips_model_to_json_to_model() -> None:
    config = RuntimeConfig.model_validate(FULL)

    again = RuntimeConfig.from_json(config.to_json())

    assert again == config
    assert again.to_json() == config.to_json()


def test_runtime_config_json_is_canonical_so_equal_configs_hash_equally() -> None:
    shuffled = dict(reversed(list(FULL.items())))

    assert RuntimeConfig.model_validate(shuffled).to_json() == (
        RuntimeConfig.model_validate(FULL).to_json()
    )
    keys = list(json.loads(RuntimeConfig.model_validate(FULL).to_json()))
    assert keys == sorted(keys)


def test_runtime_config_reads_bytes_as_well_as_text() -> None:
    text = RuntimeConfig.model_validate(FULL).to_json()

    assert RuntimeConfig.from_json(text.encode()) == RuntimeConfig.from_json(text)


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"models": []}, "models: List should have at least 1 item"),
        ({"agent": ""}, "agent: String should have at least 1 character"),
        ({"colour": "blue"}, "colour: Extra inputs are not permitted"),
        ({"maxToolIterations": 0}, "maxToolIterations: Input should be greater than or equal to 1"),
        (
            {"models": [{"provider": "mistral", "name": "m"}]},
            "models.0.provider: Input should be 'openai' or 'gemini'",
        ),
        (
            {"auth": {"apiKeysEnv": "lower-case"}},
            "auth.apiKeysEnv: String should match pattern",
        ),
        (
            {"tools": [FULL["tools"][0], FULL["tools"][0]]},
            "tool names must be unique",
        ),
        (
            {"tools": [{**FULL["tools"][0], "agent": FULL["tools"][1]["agent"]}]},
            "exactly one of http or agent must be set",
        ),
    ],
    ids=[
        "no-models",
        "empty-agent",
        "unknown-field",
        "zero-iterations",
        "unknown-provider",
        "bad-env-name",
        "duplicate-tools",
        "tool-with-two-targets",
    ],
)
def test_bad_runtime_config_is_rejected_with_a_readable_error_naming_the_field(
    change: dict[str, Any], named: str
) -> None:
    with pytest.raises(InvalidRuntimeConfig) as raised:
        RuntimeConfig.from_json(json.dumps({**FULL, **change}))

    message = str(raised.value)
    assert message.startswith("invalid runtime config:\n")
    assert named in message


def test_runtime_config_that_is_not_json_is_rejected_readably() -> None:
    with pytest.raises(
        InvalidRuntimeConfig, match="invalid runtime config:\n  <root>: Invalid JSON"
    ):
        RuntimeConfig.from_json("{not json")
