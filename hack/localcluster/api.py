"""A minimal JSON client for the local API server, authenticated as the cluster admin.

Does I/O (HTTPS to the API server). Used by `cluster` to register the kwok node and to check
readiness without spawning kubectl; tests use `handles.Cluster.kubectl` instead.
"""

from __future__ import annotations

import dataclasses
import json
import ssl
import urllib.error
import urllib.request
from typing import Any

from localcluster import pki, probes, settings


class ApiError(RuntimeError):
    """The API server answered with an unexpected status; the message has its body."""


@dataclasses.dataclass(frozen=True)
class Client:
    server: str
    tls: ssl.SSLContext

    @classmethod
    def admin(cls, config: settings.Settings) -> Client:
        return cls(config.server, probes.admin_tls(pki.files(config)))

    def request(
        self, method: str, path: str, body: Any = None, timeout: float = 10.0
    ) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            f"{self.server}{path}",
            data=data,
            method=method,
            headers={"Content-Type": "application/json", "Accept": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout, context=self.tls) as response:
                return int(response.status), json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            payload = error.read()
            try:
                return error.code, json.loads(payload)
            except ValueError:
                return error.code, payload.decode(errors="replace")

    def get(self, path: str) -> Any:
        """The object at `path`, or None when it does not exist (yet)."""
        status, body = self.request("GET", path)
        if status == 404:
            return None
        if status != 200:
            raise ApiError(f"GET {path}: {status} {body}")
        return body

    def create(self, path: str, obj: Any) -> bool:
        """POST `obj` to the collection `path`; False when it already exists."""
        status, body = self.request("POST", path, obj)
        if status == 409:
            return False
        if status not in (200, 201):
            raise ApiError(f"POST {path}: {status} {body}")
        return True
