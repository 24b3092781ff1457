"""Serialise work per key and collapse bursts: at most one run in progress and one waiting.

No I/O of its own. `reconciling.Reconciler` runs the reconciles of each Agent through one, and
`operating.Operator` the status refreshes of each Persona and Tool. A request that arrives
while a run for the same key is already waiting is dropped: the waiting run starts after it
and sees whatever prompted the request. `spawn` runs in the background, so a Kopf event
handler returns at once instead of holding up the events behind it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
Work = Callable[[], Awaitable[None]]

log = logging.getLogger(__name__)


@dataclasses.dataclass
class Coalescer(Generic[K]):
    _locks: dict[K, asyncio.Lock] = dataclasses.field(default_factory=dict)
    _waiting: set[K] = dataclasses.field(default_factory=set)
    _tasks: set[asyncio.Task[None]] = dataclasses.field(default_factory=set)

    def lock(self, key: K) -> asyncio.Lock:
        """The lock every run for `key` holds (for work that must not be coalesced away)."""
        return self._locks.setdefault(key, asyncio.Lock())

    async def run(self, key: K, work: Work) -> None:
        """Run `work` when no other run for `key` is in progress; return at once when a run
        for `key` is already waiting."""
        if self._claim(key):
            await self._run_claimed(key, work)

    def spawn(self, key: K, work: Work) -> None:
        """Like `run`, in a background task; `work` handles its own errors."""
        if not self._claim(key):
            return
        task = asyncio.create_task(self._run_claimed(key, work), name=f"corral {key}")
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def forget(self, key: K) -> None:
        """Drop the lock of a key that is gone, unless a run still holds or awaits it."""
        lock = self._locks.get(key)
        if lock is not None and not lock.locked() and key not in self._waiting:
            del self._locks[key]

    async def join(self) -> None:
        """Wait until no background run is left (including runs started meanwhile)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        """Cancel the background runs and wait until they are gone."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _claim(self, key: K) -> bool:
        if key in self._waiting:
            return False
        self._waiting.add(key)
        return True

    async def _run_claimed(self, key: K, work: Work) -> None:
        lock = self.lock(key)
        try:
            await lock.acquire()
        finally:
            # Acquired (or cancelled while waiting): the next request must queue a new run.
            self._waiting.discard(key)
        try:
            await work()
        finally:
            lock.release()

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background run failed", exc_info=task.exception())
