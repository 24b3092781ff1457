"""Content hashes that decide when pods roll and when a write can be skipped. Pure.

`config_hash` goes into the pod-template annotation `corral.dev/config-hash`: it changes
exactly when the runtime config or the value of a referenced Secret key changes, which rolls
the pods. `secret_digest` is how the API reader turns a Secret value into something hashable
without the value leaving it; `secret_data_digest` does the same for a whole Secret, so the
operator can tell a changed Secret from an event that changed nothing. `manifest_hash`
fingerprints a rendered child; `applying` compares it with the live child's
`corral.dev/applied-hash` annotation.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any


def _sha256(*parts: str) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode())
        digest.update(b"\0")
    return digest.hexdigest()


def secret_digest(namespace: str, name: str, key: str, value: str) -> str:
    """A digest of one Secret key's (base64) value, domain-separated by its coordinates."""
    return _sha256("corral.dev/secret/v1", namespace, name, key, value)


def secret_data_digest(namespace: str, name: str, data: Mapping[str, str] | None) -> str:
    """A digest of all of a Secret's (base64) data: changes exactly when a value changes."""
    return _sha256("corral.dev/secret-data/v1", namespace, name, canonical(data or {}))


def config_hash(config_json: str, secret_digests: Mapping[tuple[str, str], str]) -> str:
    """Hash of everything that must roll the pods: the config and referenced Secret data."""
    secrets = sorted([name, key, digest] for (name, key), digest in secret_digests.items())
    return _sha256("corral.dev/config/v1", config_json, canonical(secrets))


def manifest_hash(manifest: Mapping[str, Any]) -> str:
    """Hash of a rendered object, for skipping writes when the desired state is unchanged."""
    return _sha256("corral.dev/manifest/v1", canonical(manifest))


def canonical(value: Any) -> str:
    """Canonical JSON: sorted keys, no whitespace."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))
