"""Graceful shutdown: on SIGTERM stop taking work, finish what is in flight, then exit 0.

`Drain` is the shared state: the middleware counts API requests in and out (a stream counts
until its last byte; a request still receiving its body does not hold the drain: nothing of
it has been done, and a client that sends slowly must not keep the process up) and, once
draining, answers new API requests with a polite 503 in the OpenAI envelope; `/readyz` reads
it to turn 503 so the Service stops routing here. The listening socket stays open during the
drain, so late arrivals get that answer instead of a refused connection. `DrainingServer` is
uvicorn's server with the signal handling replaced: the first SIGTERM/SIGINT starts the drain
and, when nothing is in flight (or the drain timeout passes, after which the `on_expire`
callbacks end the streams still running with an error event), lets uvicorn close; a second
signal stops at once. Used by `main`; signals and
sockets are its I/O.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Callable, Iterator
from types import FrameType

import uvicorn

log = logging.getLogger(__name__)

POLL = 0.05
EXPIRE_GRACE = 1.0


class Drain:
    """In-flight API requests and whether the process is draining."""

    def __init__(self) -> None:
        self.draining = False
        self.inflight = 0
        self.receiving = 0
        self._on_expire: list[Callable[[], None]] = []

    @contextlib.contextmanager
    def receiving_body(self) -> Iterator[None]:
        """While a request's body arrives, it does not count toward the drain."""
        self.receiving += 1
        try:
            yield
        finally:
            self.receiving -= 1

    def on_expire(self, callback: Callable[[], None]) -> None:
        """Call `callback` if the drain timeout passes with requests still in flight."""
        self._on_expire.append(callback)

    def expire(self) -> None:
        for callback in self._on_expire:
            callback()

    def begin(self) -> None:
        self.draining = True

    def enter(self) -> None:
        self.inflight += 1

    def leave(self) -> None:
        self.inflight -= 1

    async def wait_idle(self, limit: float) -> bool:
        """Wait until nothing is in flight (bodies still arriving aside); False when `limit`
        seconds passed first."""
        deadline = time.monotonic() + limit
        while self.inflight - self.receiving > 0:
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(POLL)
        return True


class DrainingServer(uvicorn.Server):
    """uvicorn.Server whose first SIGTERM/SIGINT drains before the usual shutdown."""

    def __init__(self, config: uvicorn.Config, drain: Drain, drain_timeout: float) -> None:
        super().__init__(config)
        self._drain = drain
        self._drain_timeout = drain_timeout
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None

    async def serve(self, sockets: list[object] | None = None) -> None:  # type: ignore[override]
        self._loop = asyncio.get_running_loop()
        await super().serve(sockets)  # type: ignore[arg-type]

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        # Deliberately not recording the signal: uvicorn would re-raise it after shutting
        # down, and the process would die of SIGTERM instead of exiting 0.
        if self._drain.draining or self._loop is None:
            self.should_exit = True
            self.force_exit = self._drain.draining
            return
        self._drain.begin()
        log.info(
            "received %s: draining",
            signal.Signals(sig).name,
            extra={"inflight": self._drain.inflight, "drain_timeout": self._drain_timeout},
        )
        self._loop.call_soon_threadsafe(self._start_drain)

    def _start_drain(self) -> None:
        self._task = asyncio.ensure_future(self._drain_then_exit())

    async def _drain_then_exit(self) -> None:
        idle = await self._drain.wait_idle(self._drain_timeout)
        if idle:
            log.info("drained: no request in flight; shutting down")
        else:
            log.warning(
                "drain timeout passed with requests in flight; ending them and shutting down",
                extra={"inflight": self._drain.inflight},
            )
            self._drain.expire()
            # The streams just told to stop write their error event and end: give them the
            # moment that takes, then uvicorn's own grace applies to whatever is left.
            await self._drain.wait_idle(EXPIRE_GRACE)
        self.should_exit = True
