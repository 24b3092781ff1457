"""Settlements on their way to the state store: queued, carried or sent in batches, retried.

A settle is never awaited by the request that makes it: admission queues the framed SETTLE
call here. The next admit of this replica carries whatever has queued up ahead of its own
call, in its one round trip (`carry`); what no admit carries within `DELAY_SECONDS` is sent
by one task, as many calls as are waiting (up to `MAX_BATCH`) pipelined in one round trip.
Either way a settle costs no round trip and no wake-up of its own under steady traffic, and
it reaches the store before this replica's next check does. A batch the store cannot take
now is sent again after a backoff until it lands (a settle is idempotent: its ticket is
deleted by the first run, a second changes nothing), for about two minutes; past that its
tickets have expired in the store anyway. At most `MAX_PENDING` wait: past it, new ones are
dropped and logged rather than let an outage grow memory without bound. Called by
admission; network I/O only through `statestore`.
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
# How long a settle waits for an admit to carry it before it is sent on its own.
DELAY_SECONDS = 0.002
MAX_BATCH = 128
MAX_PENDING = 10_000
# How long shutdown waits for pending settles before dropping them.
CLOSE_TIMEOUT_SECONDS = 5.0


class Settlements:
    """The settles of one Agent's admission not yet taken by the store."""

    def __init__(
        self,
        store: statestore.Store,
        backoff: tuple[float, ...] = BACKOFF,
        delay: float = DELAY_SECONDS,
    ) -> None:
        self._store = store
        self._backoff = backoff
        self._delay = delay
        self._queue: collections.deque[storescripts.Call] = collections.deque()
        self._sending = 0
        self._carried = 0
        self._worker: asyncio.Task[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._returned = asyncio.Event()

    def __len__(self) -> int:
        """Settles not yet landed: queued, carried by admits, and being sent."""
        return len(self._queue) + self._carried + self._sending

    def add(self, call: storescripts.Call) -> None:
        """Queue one settle for the next admit to carry, or the sender after the delay."""
        if len(self) >= MAX_PENDING:
            log.error("too many settlements wait for the state store; one was dropped")
            return
        self._queue.append(call)
        if self._worker is None and self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self._delay, self._send_now)

    def carry(self) -> list[storescripts.Call]:
        """The queued settles, for an admit to send ahead of its own call; give them back
        with `carried`. None while the sender runs (it takes them next)."""
        if self._worker is not None or not self._queue:
            return []
        batch = [self._queue.popleft() for _ in range(min(len(self._queue), MAX_BATCH))]
        self._carried += len(batch)
        return batch

    def carried(self, batch: list[storescripts.Call], *, landed: bool) -> None:
        """The admit that carried `batch` ended: they landed, or go back to the queue front
        for the sender to retry (they may have run: a second run changes nothing)."""
        if not batch:
            return
        self._carried -= len(batch)
        if not landed:
            self._queue.extendleft(reversed(batch))
            self._send_now()
        self._returned.set()

    async def landed(self) -> None:
        """Wait until every settle queued so far has landed (or been given up)."""
        while len(self):
            self._send_now()
            if self._worker is not None:
                await asyncio.wait([self._worker])
            elif self._carried:
                self._returned.clear()
                await self._returned.wait()

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

    def _send_now(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._worker is None and self._queue:
            self._worker = asyncio.get_running_loop().create_task(self._send_all())

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
