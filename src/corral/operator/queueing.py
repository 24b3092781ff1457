"""The work queue: which object is due when, and the one record kept per object. No I/O.

`scheduling.Scheduler` owns one `Queue` and the `Record`s; nothing else creates or drops them.
A key is (kind, namespace, name) of an Agent, Persona, Tool or Secret. The queue holds each
key at most once, with the time it is due: asking again for a key already waiting moves it
earlier at most, and asking for a key whose run is in progress makes it run once more right
after; so a burst of events costs one run (the de-duplication, in one place). A run returns
`requeue_after` (the drift check, or the backoff after a failure: the one retry path) and may
`hold` its key (a Persona's status is written at most so often). Time comes from an injected
clock, so the tests step it by hand.
"""

from __future__ import annotations

import dataclasses
import heapq
import itertools
from collections.abc import Callable, Mapping
from typing import Any

Key = tuple[str, str, str]
"""(kind, namespace, name)"""


@dataclasses.dataclass
class Record:
    """Everything the operator remembers about one object between runs."""

    key: Key
    version: str | None = None
    """The last version seen in a watch event: generation (Agents, Personas, Tools) or a
    digest of the data (Secrets). An event with the same version changed nothing we use."""
    written: dict[str, Mapping[str, Any]] = dataclasses.field(default_factory=dict)
    """Kind -> the object as our own last write answered, until the watch cache shows that
    write (or a newer one): reconciles read these instead of the older cached objects."""
    references: frozenset[Key] = frozenset()
    """Personas and Tools the Agent used at its last run (their `usedBy` follows it)."""
    failures: int = 0
    """Failed runs in a row (the backoff exponent)."""
    memo: Any = None
    """What the last run may reuse (the Agent's rendered children and their inputs)."""
    held_since: float | None = None
    """Since when (the scheduler's clock) a new Agent's first status is held back while its
    first rollout runs (`reconciling`, `first_status_delay_seconds`); None: not held."""

    def seen(self, kind: str, body: Mapping[str, Any]) -> bool:
        """A watch event of `body` (of `kind`): drop the pending write it supersedes. True when
        it is the echo of our own last write (nothing new)."""
        mine = self.written.get(kind)
        if mine is None:
            return False
        theirs = _version(body)
        ours = _version(mine)
        if theirs == ours:
            del self.written[kind]
            return True
        if _newer(theirs, ours):
            del self.written[kind]
        return False

    def gone(self, kind: str) -> None:
        """The watch saw the object deleted: our last write of it is history. (Its echo may
        have come before the run that wrote it ended, leaving the write recorded: it must not
        stand in for the deleted object.)"""
        self.written.pop(kind, None)

    def newest(self, kind: str, cached: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
        """The newer of the cached object and our own last write of it."""
        mine = self.written.get(kind)
        if mine is None or cached is None:
            return cached if mine is None else mine
        theirs, ours = _version(cached), _version(mine)
        return cached if theirs == ours or _newer(theirs, ours) else mine


def _version(body: Mapping[str, Any]) -> str:
    return str((body.get("metadata") or {}).get("resourceVersion") or "")


def _newer(theirs: str, ours: str) -> bool:
    """Whether resourceVersion `theirs` comes after `ours`. They are opaque to clients, but
    the API server's are etcd revisions; anything else counts as newer (a harmless re-check)."""
    if theirs.isdigit() and ours.isdigit():
        return int(theirs) > int(ours)
    return True


@dataclasses.dataclass
class Queue:
    clock: Callable[[], float]
    _due: dict[Key, float] = dataclasses.field(default_factory=dict)
    _heap: list[tuple[float, int, Key]] = dataclasses.field(default_factory=list)
    _running: set[Key] = dataclasses.field(default_factory=set)
    _again: set[Key] = dataclasses.field(default_factory=set)
    _hold: dict[Key, float] = dataclasses.field(default_factory=dict)
    _order: itertools.count[int] = dataclasses.field(default_factory=itertools.count)

    def add(self, key: Key, delay: float = 0.0) -> None:
        """Run `key` in `delay` seconds, or sooner if it is due sooner already."""
        if key in self._running:
            if delay <= 0:
                self._again.add(key)
            return
        when = max(self.clock() + delay, self._hold.get(key, 0.0))
        if when < self._due.get(key, float("inf")):
            self._due[key] = when
            heapq.heappush(self._heap, (when, next(self._order), key))

    def pop(self) -> Key | None:
        """The key due first if it is due now (marked running), else None."""
        now = self.clock()
        while self._heap:
            when, _, key = self._heap[0]
            if self._due.get(key) != when:
                heapq.heappop(self._heap)  # superseded by an earlier time, or forgotten
                continue
            if when > now:
                return None
            heapq.heappop(self._heap)
            del self._due[key]
            self._running.add(key)
            return key
        return None

    def next_due(self) -> float | None:
        """When the next key is due (clock time), or None when nothing is queued."""
        while self._heap and self._due.get(self._heap[0][2]) != self._heap[0][0]:
            heapq.heappop(self._heap)
        return self._heap[0][0] if self._heap else None

    def done(self, key: Key, requeue_after: float | None, hold: float = 0.0) -> None:
        """The run of `key` finished: run it again at once if asked meanwhile, else after
        `requeue_after` seconds (None: only when asked). `hold`: not sooner than that."""
        self._running.discard(key)
        if hold > 0:
            self._hold[key] = self.clock() + hold
        elif key in self._hold and self._hold[key] <= self.clock():
            del self._hold[key]
        if key in self._again:
            self._again.discard(key)
            self.add(key)
        elif requeue_after is not None:
            self.add(key, requeue_after)

    def forget(self, key: Key) -> None:
        """The object is gone: nothing more to run for it."""
        self._due.pop(key, None)
        self._again.discard(key)
        self._hold.pop(key, None)

    def queued(self) -> set[Key]:
        return set(self._due)

    def running(self) -> set[Key]:
        return set(self._running)
