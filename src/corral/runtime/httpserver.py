"""uvicorn's httptools protocol with the two bounds it lacks: request-head size and head time.

uvicorn's httptools mode accepts a request head of any size (a 64 MiB header is buffered whole
before the app, and any key check, sees it) and waits forever for a head that never ends (one
header byte every few seconds keeps a connection, and a slot, open). `bounded(max_bytes,
seconds)` returns the protocol class with both bounds: the bytes received while a head is
incomplete are counted and, past `max_bytes`, the connection gets a 431; a head still incomplete
`seconds` after its first byte gets a 408. Both answers are the OpenAI error envelope and close
the connection. The bytes of a head still arriving are checked after each chunk the socket
delivers, so memory stays within `max_bytes` plus one read; a head that arrived whole in one
chunk is measured when the parser has read it, before the app sees the request. Handed to
`uvicorn.Config(http=...)` by `main`; socket I/O.
"""

from __future__ import annotations

import asyncio

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from corral.runtime import errors

REASONS = {408: b"Request Timeout", 431: b"Request Header Fields Too Large"}
# What the parser drops from a head: the request line's method, spaces and version, and each
# header line's ": " and CRLF.
REQUEST_LINE_OVERHEAD = 16
HEADER_OVERHEAD = 4


class HeadTooLarge(Exception):
    """Raised inside a parser callback to stop parsing a head over the limit."""


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """HttpToolsProtocol with a head size cap and a head deadline (class attributes)."""

    max_head_bytes = 64 * 1024
    head_timeout = 30.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._in_head = True
        self._head_bytes = 0
        self._too_large = False
        self._head_timer: asyncio.TimerHandle | None = None

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._in_head:
            if self._head_timer is None:
                self._head_timer = self.loop.call_later(self.head_timeout, self._head_timed_out)
            self._head_bytes += len(data)
        super().data_received(data)
        if self._in_head and self._head_bytes > self.max_head_bytes:
            self._refuse_too_large()

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._stop_timer()
        # Measured once the parser has the whole head (uvicorn kept the URL and the headers),
        # not per header: this runs on every request.
        size = len(self.url) + REQUEST_LINE_OVERHEAD
        size += sum(len(name) + len(value) for name, value in self.headers)
        size += HEADER_OVERHEAD * len(self.headers)
        if size > self.max_head_bytes:
            self._too_large = True
            raise HeadTooLarge  # the parser stops and uvicorn calls send_400_response
        super().on_headers_complete()

    def send_400_response(self, msg: str) -> None:
        if self._too_large:
            self._refuse_too_large()
        else:
            super().send_400_response(msg)

    def on_message_complete(self) -> None:
        super().on_message_complete()
        # The next request on this connection starts a new head.
        self._in_head = True
        self._head_bytes = 0

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self._in_head and self._head_bytes:
            self._refuse(
                408,
                "request_timeout",
                f"the request line and headers did not arrive within {self.head_timeout:g}s",
            )

    def _refuse_too_large(self) -> None:
        self._refuse(
            431,
            "request_header_fields_too_large",
            f"the request line and headers are over the {self.max_head_bytes}-byte limit",
        )

    def _stop_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _refuse(self, status: int, code: str, message: str) -> None:
        self._stop_timer()
        if self.transport.is_closing():
            return
        answer = errors.render(status, message, "invalid_request_error", None, code)
        head = b"HTTP/1.1 %d %s\r\n" % (status, REASONS[status])
        head += b"content-type: application/json\r\ncontent-length: %d\r\n" % len(answer.body)
        self.transport.write(head + b"connection: close\r\n\r\n" + answer.body)
        self.transport.close()


def bounded(max_head_bytes: int, head_timeout: float) -> type[BoundedHttpToolsProtocol]:
    """The protocol class with these bounds."""
    return type(
        "BoundedHttpToolsProtocol",
        (BoundedHttpToolsProtocol,),
        {"max_head_bytes": max_head_bytes, "head_timeout": head_timeout},
    )
