"""Where conversation sessions live: in this process, or in the shared store for all replicas.

`LocalSessions` wraps the in-process `memory.SessionStore`. `SharedSessions` keeps each
session as a list in the state store under the caller's key hash and the session id (so one
key cannot read another's session), with the same bounds: messages and estimated tokens per
session (trimmed oldest first by one script, never starting on a non-user message), the idle
TTL as the keys' expiry, and the session cap through an index by last use. Any replica
continues any session, and sessions outlive pod restarts. While the store is unreachable,
`FailOpen` keeps sessions in the process; `FailClosed` answers 503 to a request whose
history cannot be read (a turn that cannot be written after its answer is logged, not
lost). Called by the serving layer; network I/O through `statestore` only.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from corral.api.agents import MemorySpec
from corral.runtime import errors, memory, statestore, storescripts, tokens
from corral.runtime.auth import Principal

log = logging.getLogger(__name__)


class Sessions(Protocol):
    async def history(self, principal: Principal, session_id: str) -> list[dict[str, Any]]: ...

    async def remember(
        self, principal: Principal, session_id: str, messages: Sequence[dict[str, Any]]
    ) -> None: ...


class LocalSessions:
    """Sessions in this process (`memory.SessionStore`)."""

    def __init__(self, store: memory.SessionStore) -> None:
        self.store = store

    async def history(self, principal: Principal, session_id: str) -> list[dict[str, Any]]:
        return self.store.history(principal.id, session_id)

    async def remember(
        self, principal: Principal, session_id: str, messages: Sequence[dict[str, Any]]
    ) -> None:
        self.store.append(principal.id, session_id, messages)


class SharedSessions:
    """Sessions in the state store; `fallback` (FailOpen) takes over while it is down."""

    def __init__(
        self,
        store: statestore.Store,
        spec: MemorySpec,
        fallback: memory.SessionStore | None,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._spec = spec
        self._fallback = fallback
        self._wall = wall_clock
        self._index = f"{store.prefix}sessions"

    async def history(self, principal: Principal, session_id: str) -> list[dict[str, Any]]:
        try:
            items = await self._store.history(self._key(principal, session_id))
        except statestore.Unavailable:
            if self._fallback is None:
                raise errors.StoreUnavailable() from None
            return self._fallback.history(principal.id, session_id)
        return [json.loads(item.split(b"\t", 2)[2]) for item in items]

    async def remember(
        self, principal: Principal, session_id: str, messages: Sequence[dict[str, Any]]
    ) -> None:
        spec = self._spec
        args: list[storescripts.Value] = [
            int(self._wall() * 1000), spec.ttl_seconds * 1000, spec.max_messages,
            spec.max_tokens, spec.max_sessions, f"{principal.digest}:s:{session_id}",
            self._store.prefix,
        ]  # fmt: skip
        for message in messages:
            args += [tokens.estimate_stored(message), message["role"], json.dumps(message)]
        try:
            keys: list[storescripts.Value] = [self._key(principal, session_id), self._index]
            await self._store.run(storescripts.Call.of(storescripts.REMEMBER, keys, args))
        except statestore.Unavailable as err:
            if self._fallback is not None:
                self._fallback.append(principal.id, session_id, messages)
                return
            # The answer is made; losing it for want of a write would be worse than a turn
            # missing from the history.
            log.warning("a session turn was not kept: %s", err)

    def _key(self, principal: Principal, session_id: str) -> str:
        return f"{self._store.caller(principal.digest)}s:{session_id}"
