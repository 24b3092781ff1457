"""Keeps secrets and upstream chatter out of what the runtime says: error bodies, logs, tools.

`Redactor` holds the secret values this process was given (model API keys, tool header values,
the accepted client keys: whatever the Deployment put in the environment from Secrets) and
replaces any of them, plus anything shaped like a bearer token or a well-known API key, with
`[redacted]`. `excerpt` bounds an upstream's text and strips control characters before it is
redacted. Built once by the app factory from the config and the environment; used where text
from outside enters an answer, a tool result or a log line. Pure; no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from corral.api.runtimeconfig import RuntimeConfig

MASK = "[redacted]"
# Secrets shorter than this are not searched for: they would match ordinary words.
MIN_SECRET = 6
EXCERPT = 512
# Credentials that need no configuration to recognise: bearer tokens, OpenAI-style keys
# (sk-..., sk-proj-...), Google API keys (AIza...), and key=value / "key": "value" pairs.
_SHAPES = (
    r"(?i:bearer)\s+[A-Za-z0-9._~+/=-]{8,}",
    r"\bsk-[A-Za-z0-9_-]{16,}",
    r"\bAIza[0-9A-Za-z_-]{30,}",
    r"(?i:api[_-]?key|access[_-]?token|secret|password)[\"']?\s*[:=]\s*[\"']?[^\s\"',;&]{6,}",
)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


class Redactor:
    """Replaces known secret values and credential-shaped text with MASK."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        values = sorted({s.strip() for s in secrets if len(s.strip()) >= MIN_SECRET}, key=len)
        known = [re.escape(v) for v in reversed(values)]  # longest first: no partial leftovers
        self._pattern = re.compile("|".join([*known, *_SHAPES]))
        self._longest = max((len(v) for v in values), default=0)

    def __call__(self, text: str) -> str:
        return self._pattern.sub(MASK, text)

    def excerpt(self, text: str, limit: int = EXCERPT) -> str:
        """`text` from outside, safe to show: one bounded line, no control characters, redacted.
        Redacts before the final cut, so a secret split by it cannot leave a readable half."""
        head = text[: limit + self._longest + 256]  # all that can reach the cut, not megabytes
        flat = _CONTROL.sub(" ", self(head)).strip()
        return flat if len(flat) <= limit else flat[:limit] + "..."


def secrets_of(config: RuntimeConfig, env: Mapping[str, str]) -> list[str]:
    """Every secret value `config` points at in `env`: model API keys, tool and MCP server
    header values from Secrets, the state store's password, and each accepted client key (one
    per line)."""
    names = [m.api_key_env for m in config.models if m.api_key_env]
    names += [var for t in config.tools if t.http for var in t.http.header_envs.values()]
    names += [var for server in config.mcp_servers or [] for var in server.header_envs.values()]
    if config.state_store is not None and config.state_store.password_env:
        names.append(config.state_store.password_env)
    values = [env[name] for name in names if env.get(name)]
    if config.auth is not None:
        values += env.get(config.auth.api_keys_env, "").splitlines()
    return values
