"""Server-side conversation memory: the history of each session, bounded in every direction.

A session is keyed by the caller and the `x-session-id` header (one caller cannot read
another's session by guessing its id). Each session keeps at most `max_messages` messages and
about `max_tokens` estimated tokens (oldest dropped first; an image counts by its size, so
the bound holds for bytes too); a session idle for `ttl_seconds`
is gone; at most `max_sessions` are held (least recently used dropped first). Expired
sessions are swept from the old end on every write, so memory stays flat under any load.
Only user messages and final assistant answers are kept, never tool traffic. Called by the
serving layer; pure (the clock is injected).
"""

from __future__ import annotations

import collections
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from corral.api.agents import MemorySpec
from corral.runtime import errors, tokens

SESSION_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
SESSION_HEADER = "x-session-id"

Clock = Callable[[], float]


@dataclass(slots=True)
class Session:
    messages: collections.deque[dict[str, Any]] = field(default_factory=collections.deque)
    sizes: collections.deque[int] = field(default_factory=collections.deque)
    tokens: int = 0
    touched: float = 0.0


def check_session_id(value: str) -> str:
    """The header value if it is a usable id; InvalidRequest otherwise."""
    if not SESSION_ID.match(value):
        raise errors.InvalidRequest(
            f"{SESSION_HEADER} must be 1-128 characters of A-Z a-z 0-9 . _ : -",
            param=SESSION_HEADER,
        )
    return value


class SessionStore:
    """Histories by (caller, session id). All operations are O(1) amortised."""

    def __init__(self, spec: MemorySpec, clock: Clock = time.monotonic) -> None:
        self._spec = spec
        self._clock = clock
        self._sessions: collections.OrderedDict[tuple[str, str], Session] = (
            collections.OrderedDict()
        )

    def __len__(self) -> int:
        return len(self._sessions)

    def history(self, caller: str, session_id: str) -> list[dict[str, Any]]:
        """The kept messages of a session, oldest first ([] for a new or expired one)."""
        key = (caller, session_id)
        session = self._sessions.get(key)
        if session is None:
            return []
        if self._clock() - session.touched > self._spec.ttl_seconds:
            del self._sessions[key]
            return []
        return list(session.messages)

    def append(self, caller: str, session_id: str, messages: Sequence[dict[str, Any]]) -> None:
        """Add a turn's messages, then trim the session and evict old sessions."""
        now = self._clock()
        key = (caller, session_id)
        session = self._sessions.get(key)
        if session is None or now - session.touched > self._spec.ttl_seconds:
            session = self._sessions[key] = Session()
        self._sessions.move_to_end(key)
        session.touched = now
        for message in messages:
            size = tokens.estimate_stored(message)
            session.messages.append(message)
            session.sizes.append(size)
            session.tokens += size
        self._trim(session)
        self._evict(now)

    def _trim(self, session: Session) -> None:
        spec = self._spec
        while session.messages and (
            len(session.messages) > spec.max_messages or session.tokens > spec.max_tokens
        ):
            session.messages.popleft()
            session.tokens -= session.sizes.popleft()
        # A history must not start with an orphaned assistant answer.
        while session.messages and session.messages[0].get("role") != "user":
            session.messages.popleft()
            session.tokens -= session.sizes.popleft()

    def _evict(self, now: float) -> None:
        sessions = self._sessions
        while len(sessions) > self._spec.max_sessions:
            sessions.popitem(last=False)
        while sessions:
            oldest = next(iter(sessions.values()))
            if now - oldest.touched <= self._spec.ttl_seconds:
                break
            sessions.popitem(last=False)
