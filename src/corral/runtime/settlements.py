"""Settlements on their way to the state store: queued, sent in pipelined batches, retried.

A settle is never awaited by the request that makes it: admission queues the framed SETTLE
call here and one task sends whatever has queued up, as many calls as are waiting (up to
`MAX_BATCH`) in one round trip, so under load many requests share one write and one wake-up.
A batch the store cannot take now is sent again after a backoff until it lands (a settle is
idempotent: its ticket is deleted by the first run, a second changes nothing), for about
`GIVE_UP_SECONDS`; past that its tickets have expired in the store anyway. At most
`MAX_PENDING` wait: past it, new ones are dropped and logged rather than let an outage grow
memory without bound. Called by admission; network I/O only through `statestore`.
"""

from __future__ import annotations

import asyncio
import collections
import logging

from corral.runtime import statestore, storescripts

log = logging.getLogger(__name__)

BACKOFF = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0)
# Retries of one batch, at most (the last backoff after the first ones): about two minutes.
ATTEMPTS = len(BACKOFF) + 60
MAX_BATCH = 128
MAX_PENDING = 10_000
# How long shutdown waits for pending settles before dropping them.
CLOSE_TIMEOUT_SECONDS = 5.0


class Settlements:
    """The settles of one Agent's admission not yet taken by the store."""

    def __init__(self, store: statestore.Store, backoff: tuple[float, ...] = BACKOFF) -> None:
        self._store = store
        self._backoff = backoff
        self._queue: collections.deque[storescripts.Call] = collections.deque()
        self._sending = 0
        self._worker: asyncio.Task[None] | None = None

    def __len__(self) -> int:
        """Settles not yet landed: queued, and in the batch being sent."""
        return len(self._queue) + self._sending

    def add(self, call: storescripts.Call) -> None:
        """Queue one settle; the sender starts when it is not already running."""
        if len(self) >= MAX_PENDING:
            log.error("too many settlements wait for the state store; one was dropped")
            return
        self._queue.append(call)
        if self._worker is None:
            self._worker = asyncio.get_running_loop().create_task(self._send_all())

    async def landed(self) -> None:
        """Wait until every settle queued so far has landed (or been given up)."""
        while (worker := self._worker) is not None:
            await asyncio.wait([worker])

    async def aclose(self) -> None:
        """Wait a little for the queue to land (the store may be down), then drop what is
        left (logged)."""
        try:
            async with asyncio.timeout(CLOSE_TIMEOUT_SECONDS):
                await self.landed()
        except TimeoutError:
            log.error("%d settlements could not reach the state store", len(self))
            if self._worker is not None:
                self._worker.cancel()
                await asyncio.wait([self._worker])
            self._queue.clear()

    async def _send_all(self) -> None:
        try:
            while self._queue:
                count = min(len(self._queue), MAX_BATCH)
                batch = [self._queue.popleft() for _ in range(count)]
                self._sending = count
                await self._send(batch)
                self._sending = 0
        finally:
            self._sending = 0
            self._worker = None

    async def _send(self, batch: list[storescripts.Call]) -> None:
        for attempt in range(ATTEMPTS):
            try:
                await self._store.run_all(batch)
            except statestore.Unavailable:
                await asyncio.sleep(self._backoff[min(attempt, len(self._backoff) - 1)])
                continue
            return
        log.error("%d settlements could not reach the state store and were dropped", len(batch))
