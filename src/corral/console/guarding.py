"""Browser-facing guards of a console that acts with the user's credentials. No I/O.

A page on another site must not be able to use the console: a cross-site form POST to
`/author/.../apply` would otherwise apply a manifest with the user's credentials (CSRF), and a
hostile DNS name pointed at 127.0.0.1 would let another site read the pages (DNS rebinding).
So a request whose Host is not the console's own address is refused when the console listens
on loopback, a state-changing request whose Origin is another site is refused, and no page
may be framed (clickjacking the Apply button). Installed by `app.create_app`.
"""

from __future__ import annotations

import ipaddress
import urllib.parse

from starlette.datastructures import Headers
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
FRAMING = [
    (b"x-frame-options", b"DENY"),
    (b"content-security-policy", b"frame-ancestors 'none'"),
    (b"referrer-policy", b"same-origin"),
]


def hostname(host_header: str) -> str:
    """`127.0.0.1:8090` -> `127.0.0.1`; `[::1]:8090` -> `::1`."""
    parsed = urllib.parse.urlsplit(f"//{host_header}")
    return (parsed.hostname or "").lower()


def checks_host(bind: str) -> bool:
    """Only a console bound to loopback knows every name it may be reached by."""
    if bind.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(bind).is_loopback
    except ValueError:
        return False


def refusal(method: str, headers: Headers, check_host: bool) -> str | None:
    """Why the request is refused, or None."""
    host = headers.get("host", "")
    if check_host and hostname(host) not in LOOPBACK_NAMES:
        return (
            f"unexpected Host {host!r}: this console answers on 127.0.0.1 or localhost only"
            " (protection against DNS rebinding)"
        )
    if method not in SAFE_METHODS:
        origin = headers.get("origin")
        if origin is not None and urllib.parse.urlsplit(origin).netloc.lower() != host.lower():
            return f"cross-site request from {origin} refused"
        if headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
            return "cross-site request refused"
    return None


class Guard:
    """ASGI middleware applying `refusal` and the framing headers."""

    def __init__(self, app: ASGIApp, bind: str) -> None:
        self.app = app
        self.check_host = checks_host(bind)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        why = refusal(scope["method"], Headers(scope=scope), self.check_host)
        if why is not None:
            await PlainTextResponse(why, status_code=403)(scope, receive, send)
            return

        async def framed(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *FRAMING]
            await send(message)

        await self.app(scope, receive, framed)
