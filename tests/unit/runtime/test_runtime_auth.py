"""Bearer API keys from an env var: parsing, checking, and the principal limits key on."""

from __future__ import annotations

import pytest

from corral.api.runtimeconfig import AuthConfig
from corral.runtime import auth, errors

CONFIG = AuthConfig(api_keys_env="KEYS")


def test_without_auth_every_caller_is_the_agent() -> None:
    anyone = auth.Authenticator.from_config(None, {})

    assert not anyone.enabled
    assert anyone.authenticate(None) == auth.Principal("agent")


def test_keys_are_one_per_line_and_each_has_its_own_principal() -> None:
    keys = auth.Authenticator.from_config(CONFIG, {"KEYS": " alpha \n\nbeta\n"})

    assert keys.authenticate("Bearer alpha").id == "key-0"
    assert keys.authenticate("bearer beta").id == "key-1"


def test_the_store_names_a_caller_by_a_hash_of_its_key_not_by_its_position() -> None:
    first = auth.Authenticator.from_config(CONFIG, {"KEYS": "alpha\nbeta"})
    reordered = auth.Authenticator.from_config(CONFIG, {"KEYS": "beta\nalpha"})

    digest = first.authenticate("Bearer alpha").digest
    assert reordered.authenticate("Bearer alpha").digest == digest
    assert first.authenticate("Bearer beta").digest != digest
    assert "alpha" not in digest


@pytest.mark.parametrize(
    "header", [None, "", "alpha", "Basic alpha", "Bearer ", "Bearer alph", "Bearer alphaa"]
)
def test_anything_but_a_listed_bearer_key_is_unauthorized(header: str | None) -> None:
    keys = auth.Authenticator.from_config(CONFIG, {"KEYS": "alpha"})

    with pytest.raises(errors.Unauthorized) as caught:
        keys.authenticate(header)

    assert "alpha" not in caught.value.message


@pytest.mark.parametrize("env", [{}, {"KEYS": ""}, {"KEYS": "\n  \n"}])
def test_auth_without_keys_fails_at_startup_naming_the_variable(env: dict[str, str]) -> None:
    with pytest.raises(auth.KeysMissing, match=r"\$KEYS"):
        auth.Authenticator.from_config(CONFIG, env)
