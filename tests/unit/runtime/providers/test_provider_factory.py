"""Building the chain from the runtime config's model list and the environment."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from corral.api.runtimeconfig import ModelEndpoint
from corral.runtime.providers import factory
from corral.runtime.providers.gemini import GeminiProvider
from corral.runtime.providers.openai import OpenAIProvider

pytestmark = pytest.mark.anyio

SECRET = "sk-test-do-not-print-4242"

PRIMARY = ModelEndpoint(
    provider="openai",
    name="gpt-4o-mini",
    base_url="http://127.0.0.1:9/v1",
    api_key_env="OPENAI_KEY",
)
FALLBACK = ModelEndpoint(provider="gemini", name="gemini-2.5-flash", api_key_env="GEMINI_KEY")
KEYLESS = ModelEndpoint(provider="openai", name="local", base_url="http://127.0.0.1:9/v1")


async def test_chain_holds_one_provider_per_model_in_config_order() -> None:
    chain = factory.build_chain(
        [PRIMARY, FALLBACK, KEYLESS], {"OPENAI_KEY": SECRET, "GEMINI_KEY": "g-key"}
    )
    try:
        kinds = [(type(p), p.model) for p in chain.providers]
        assert kinds == [
            (OpenAIProvider, "gpt-4o-mini"),
            (GeminiProvider, "gemini-2.5-flash"),
            (OpenAIProvider, "local"),
        ]
        assert chain.model == "gpt-4o-mini"
        assert chain.provider == "failover"
    finally:
        await chain.aclose()


@pytest.mark.parametrize(
    ("env", "problem"),
    [({}, "OPENAI_KEY is not set"), ({"OPENAI_KEY": "  \n"}, "OPENAI_KEY is empty")],
    ids=["unset", "blank"],
)
def test_a_missing_key_names_the_variable_and_the_model(env: dict[str, str], problem: str) -> None:
    with pytest.raises(factory.MissingApiKey, match=problem) as caught:
        factory.build_chain([PRIMARY], env)
    assert "gpt-4o-mini" in str(caught.value)


def test_the_error_for_one_missing_key_never_contains_another_keys_value() -> None:
    with pytest.raises(factory.MissingApiKey) as caught:
        factory.build_chain([PRIMARY, FALLBACK], {"OPENAI_KEY": SECRET})
    assert "GEMINI_KEY" in str(caught.value)
    assert SECRET not in str(caught.value)


def test_gemini_needs_a_key() -> None:
    keyless_gemini = ModelEndpoint(provider="gemini", name="gemini-2.5-flash")
    with pytest.raises(factory.MissingApiKey, match="needs an API key"):
        factory.api_key(keyless_gemini, {})


def test_keys_are_read_from_the_given_environment_and_trimmed() -> None:
    assert factory.api_key(PRIMARY, {"OPENAI_KEY": f"{SECRET}\n"}) == SECRET
    assert factory.api_key(KEYLESS, {}) is None


def test_an_openai_only_runtime_never_imports_the_gemini_sdk() -> None:
    """google.genai costs ~0.3 s of CPU to import; only a Gemini model may pay for it.
    In a fresh interpreter, because this test module itself imports the gemini provider."""
    probe = textwrap.dedent(
        """
        import sys
        from corral.api.runtimeconfig import ModelEndpoint
        from corral.runtime import app, main
        from corral.runtime.providers import factory

        endpoint = ModelEndpoint(provider="openai", name="m", base_url="http://127.0.0.1:9/v1")
        factory.build_chain([endpoint], {})
        print(sorted(name for name in sys.modules if name.startswith("google")))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
