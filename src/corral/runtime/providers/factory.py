"""Builds the failover chain of an agent from its runtime config, once, at startup.

Called by the runtime's startup code with `RuntimeConfig.models` (primary first) and the
process environment, where the Deployment put each model's API key from a Secret
(`ModelEndpoint.api_key_env` names the variable). Constructs long-lived SDK clients; no
network I/O until the first call. Errors name the variable, never its value. The `gemini`
module (and with it `google.genai`, ~0.3 s of CPU to import) is loaded only when a Gemini
model is configured.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from opentelemetry import trace

from corral.api.runtimeconfig import ModelEndpoint
from corral.runtime import redaction
from corral.runtime.providers import backoff, base, circuit, failover, traced
from corral.runtime.providers.openai import OpenAIProvider


class MissingApiKey(ValueError):
    """A model's API key is not in the environment the Deployment should have filled."""

    def __init__(self, endpoint: ModelEndpoint, reason: str) -> None:
        super().__init__(
            f"model {endpoint.name!r} ({endpoint.provider}): {reason}; it should come from the"
            " Agent's apiKeySecretRef through the Deployment's environment"
        )


def build_chain(
    models: Sequence[ModelEndpoint],
    env: Mapping[str, str],
    observer: failover.Observer | None = None,
    *,
    retry: backoff.RetryPolicy | None = None,
    breaker: circuit.BreakerPolicy | None = None,
    redact: redaction.Redactor | None = None,
    tracer: trace.Tracer | None = None,
) -> failover.FailoverChain:
    """The chain over every model, in order. Raises MissingApiKey before building anything
    if any model's key is missing, so a half-built set of clients is never left open. Every
    provider's error text is redacted of every model's key (and of what `redact` knows). With
    a `tracer`, every call to every model gets its own span (`traced`)."""
    keys = [api_key(endpoint, env) for endpoint in models]
    if redact is None:
        redact = redaction.Redactor(key for key in keys if key)
    providers = [
        build_provider(endpoint, key, redact) for endpoint, key in zip(models, keys, strict=True)
    ]
    if tracer is not None:
        providers = [traced.TracedProvider(p, tracer) for p in providers]
    return failover.FailoverChain(providers, observer=observer, retry=retry, breaker=breaker)


def api_key(endpoint: ModelEndpoint, env: Mapping[str, str]) -> str | None:
    """The endpoint's key from `env`, or None for keyless endpoints (OpenAI-compatible only)."""
    if endpoint.api_key_env is None:
        if endpoint.provider == "gemini":
            raise MissingApiKey(endpoint, "the gemini provider needs an API key, none is set")
        return None
    value = env.get(endpoint.api_key_env)
    if value is None:
        raise MissingApiKey(endpoint, f"environment variable {endpoint.api_key_env} is not set")
    value = value.strip()
    if not value:
        raise MissingApiKey(endpoint, f"environment variable {endpoint.api_key_env} is empty")
    return value


def build_provider(
    endpoint: ModelEndpoint, key: str | None, redact: redaction.Redactor | None = None
) -> base.Provider:
    """One provider with its long-lived client."""
    if endpoint.provider == "gemini":
        assert key is not None, "api_key() guarantees a gemini key"
        from corral.runtime.providers import gemini

        return gemini.GeminiProvider(
            model=endpoint.name,
            api_key=key,
            base_url=endpoint.base_url,
            timeout=endpoint.timeout_seconds,
            temperature=endpoint.temperature,
            max_tokens=endpoint.max_tokens,
            redact=redact,
        )
    return OpenAIProvider(
        model=endpoint.name,
        api_key=key,
        base_url=endpoint.base_url,
        timeout=endpoint.timeout_seconds,
        temperature=endpoint.temperature,
        max_tokens=endpoint.max_tokens,
        redact=redact,
    )
