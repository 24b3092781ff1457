"""Health probes over loopback HTTP(S), and a bounded wait with a useful failure message.

Does I/O (HTTP GETs, sleeps). Called by `cluster` while bringing components up and for `status`.
"""

from __future__ import annotations

import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable

from localcluster import pki


class NotReadyError(TimeoutError):
    """Something did not become ready in time; the message names it and carries context."""


def admin_tls(files: pki.Files) -> ssl.SSLContext:
    """Verifies the API server against the cluster CA and presents the admin client cert."""
    context = ssl.create_default_context(cafile=str(files.ca_cert))
    context.load_cert_chain(str(files.admin_cert), str(files.admin_key))
    return context


def self_signed_tls() -> ssl.SSLContext:
    """For controller-manager and scheduler /healthz: they serve self-signed certs."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def healthy(url: str, context: ssl.SSLContext | None = None, timeout: float = 2.0) -> bool:
    """True when GET `url` answers 200."""
    try:
        with urllib.request.urlopen(url, timeout=timeout, context=context) as response:
            return int(response.status) == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def wait_for(
    what: str,
    check: Callable[[], bool],
    timeout: float,
    detail: Callable[[], str] | None = None,
    interval: float = 0.1,
) -> float:
    """Poll `check` until it is true; return the seconds waited or raise `NotReadyError`."""
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > timeout:
            context = f"\n{detail()}" if detail else ""
            raise NotReadyError(f"{what} not ready after {timeout:.0f}s{context}")
        time.sleep(interval)
    return time.monotonic() - started
