"""The admin kubeconfig: rendered from the pki (pure) and written to `<state>/kubeconfig`.

The credentials are embedded, so the file stands alone (it can be copied or mounted).
`write` does I/O; `render` does not. Called by `cluster.up`.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

import yaml

from localcluster import pki, settings

CONTEXT = "corral-local"


def render(server: str, ca_pem: bytes, cert_pem: bytes, key_pem: bytes) -> dict[str, Any]:
    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode()

    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": CONTEXT,
                "cluster": {"server": server, "certificate-authority-data": b64(ca_pem)},
            }
        ],
        "users": [
            {
                "name": pki.ADMIN_USER,
                "user": {
                    "client-certificate-data": b64(cert_pem),
                    "client-key-data": b64(key_pem),
                },
            }
        ],
        "contexts": [
            {
                "name": CONTEXT,
                "context": {"cluster": CONTEXT, "user": pki.ADMIN_USER, "namespace": "default"},
            }
        ],
        "current-context": CONTEXT,
        "preferences": {},
    }


def write(config: settings.Settings, files: pki.Files) -> Path:
    """Write the admin kubeconfig atomically (readers never see a partial file)."""
    document = render(
        config.server,
        files.ca_cert.read_bytes(),
        files.admin_cert.read_bytes(),
        files.admin_key.read_bytes(),
    )
    target = config.kubeconfig
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    tmp.write_text(yaml.safe_dump(document, sort_keys=False))
    tmp.chmod(0o600)
    os.replace(tmp, target)
    return target
