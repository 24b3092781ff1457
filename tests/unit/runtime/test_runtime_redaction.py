"""What the runtime repeats from outside is bounded, one line, and free of secrets."""

from __future__ import annotations

import pytest

from corral.api.runtimeconfig import RuntimeConfig
from corral.runtime import redaction


def test_configured_secrets_are_masked_wherever_they_appear() -> None:
    redact = redaction.Redactor(["tok-abcdef", "tok-abcdef-longer"])

    assert redact("x tok-abcdef-longer y tok-abcdef") == "x [redacted] y [redacted]"


def test_short_values_are_not_taken_for_secrets() -> None:
    assert redaction.Redactor(["abc"])("abc is a word") == "abc is a word"


@pytest.mark.parametrize(
    "text",
    [
        "Authorization: Bearer abcdefgh12345678",
        "key sk-proj-AAAAAAAAAAAAAAAAAAAAAAAA was refused",
        "AIzaSyA-0123456789abcdefghijklmnopqrstu",
        'body {"api_key": "hunter2hunter2"}',
        "password=correcthorse",
    ],
)
def test_credential_shaped_text_is_masked_without_configuration(text: str) -> None:
    assert redaction.MASK in redaction.Redactor()(text)


def test_an_excerpt_is_one_bounded_line_redacted_before_the_cut() -> None:
    secret = "s" * 40
    text = "a" * 500 + secret + "\n\x00" + "b" * 10_000

    excerpt = redaction.Redactor([secret]).excerpt(text, limit=510)

    assert "sss" not in excerpt
    assert "\n" not in excerpt
    assert "\x00" not in excerpt
    assert len(excerpt) <= 513


def test_the_secrets_of_a_config_are_its_keys_tool_headers_and_client_keys() -> None:
    config = RuntimeConfig.model_validate(
        {
            "agent": "a",
            "namespace": "n",
            "models": [{"provider": "openai", "name": "m", "apiKeyEnv": "MODEL_KEY"}],
            "tools": [
                {
                    "name": "t",
                    "description": "d",
                    "parameters": {"type": "object"},
                    "http": {"url": "http://t/", "headerEnvs": {"x-token": "TOOL_TOKEN"}},
                }
            ],
            "auth": {"apiKeysEnv": "CLIENT_KEYS"},
        }
    )
    env = {"MODEL_KEY": "mk", "TOOL_TOKEN": "tt", "CLIENT_KEYS": "k1\nk2", "OTHER": "o"}

    assert sorted(redaction.secrets_of(config, env)) == ["k1", "k2", "mk", "tt"]
