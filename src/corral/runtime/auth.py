"""Bearer API keys: who may call this agent, and under which rate-limit bucket.

The keys come from one environment variable (filled from a Secret by the Deployment), one key
per line. Every presented key is compared with every accepted key using
`hmac.compare_digest`, without stopping at the first match, so the time taken says nothing
about which key or how much of it matched. Keys never leave this module: callers get a
`Principal` with a stable, non-secret id (`key-<n>`). Built once at startup by the app; pure
after that (no I/O).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass

from corral.api.runtimeconfig import AuthConfig
from corral.runtime import errors

ANONYMOUS = "agent"


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller, as far as limits and sessions care: `key-<n>`, or `agent` when auth is off.
    `digest` names the caller in the shared store: a hash of its key, stable across replicas
    and key reorderings, from which the key cannot be recovered."""

    id: str
    digest: str = ANONYMOUS


class KeysMissing(ValueError):
    """Auth is on but the env var holding the keys is unset or lists no key."""


class Authenticator:
    """Checks `Authorization: Bearer <key>` against the accepted keys."""

    def __init__(self, keys: list[bytes] | None) -> None:
        self._keys = keys
        self._anonymous = Principal(ANONYMOUS)
        self._principals = [
            Principal(f"key-{index}", "k" + hashlib.sha256(key).hexdigest()[:32])
            for index, key in enumerate(keys or [])
        ]

    @classmethod
    def from_config(cls, config: AuthConfig | None, env: Mapping[str, str]) -> Authenticator:
        """Auth off when `config` is None; otherwise the keys in `env[config.api_keys_env]`."""
        if config is None:
            return cls(None)
        raw = env.get(config.api_keys_env)
        if raw is None:
            raise KeysMissing(f"auth is enabled but ${config.api_keys_env} is not set")
        keys = [line.strip().encode() for line in raw.splitlines() if line.strip()]
        if not keys:
            raise KeysMissing(f"auth is enabled but ${config.api_keys_env} lists no key")
        return cls(keys)

    @property
    def enabled(self) -> bool:
        return self._keys is not None

    def authenticate(self, authorization: str | None) -> Principal:
        """The caller's principal; raises Unauthorized without a valid bearer key."""
        if self._keys is None:
            return self._anonymous
        if not authorization:
            raise errors.Unauthorized("missing API key: send 'Authorization: Bearer <key>'")
        scheme, _, presented = authorization.partition(" ")
        if scheme.lower() != "bearer" or not presented.strip():
            raise errors.Unauthorized("the Authorization header must be 'Bearer <key>'")
        candidate = presented.strip().encode()
        match = -1
        for index, key in enumerate(self._keys):
            if hmac.compare_digest(candidate, key):
                match = index
        if match < 0:
            raise errors.Unauthorized("invalid API key")
        return self._principals[match]
