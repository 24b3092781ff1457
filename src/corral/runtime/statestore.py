"""The shared store client: Redis-protocol connections and the scripts they run.

Built once by the app's lifespan from `config.stateStore` (the password from the env var the
Deployment fills by secretKeyRef). Every operation is one round trip: a script by EVALSHA
(several pipelined in one write: an admit carrying settles, a batch of settles), or one plain
command, timed and counted by operation; any failure (refused, reset, timed out, an error
reply) becomes `Unavailable`, which admission maps to the Agent's failure policy. The client
retries nothing itself: a down store must be noticed at once, not after a backoff. The one
exception is a store that lost its scripts (it restarted): nothing ran, so the scripts are
loaded and the calls sent again, in one round trip.

redis-py's connections do the socket, TLS, the handshake (AUTH, SELECT) and reply parsing;
this module keeps its own small list of idle connections and sends calls framed by
`storescripts`. redis-py's client and pool cost about 35 us of CPU per call on top of that
(a lock, a socket poll, observability hooks and a task per write for its timeout; measured
in bench/PROFILE.md), the larger part of what a shared limit added to a request. A connection
is checked as redis-py's pool checks it before it is reused, and after a failure every idle
connection is dropped (they lead to the same server, which just failed).

Keys are `corral:{NAMESPACE/AGENT}:...`: the hash tag keeps one Agent's keys in one slot, and
callers appear only as a hash of their API key. Does network I/O; called by admission and
the shared sessions.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import redis.asyncio
import redis.exceptions
from redis.asyncio.connection import AbstractConnection
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from corral.api.runtimeconfig import StateStoreConfig
from corral.runtime import storescripts

# The outcome of one store operation: (operation, seconds, error type or "").
Observer = Callable[[str, float, str], None]

HISTORY = "history"
# Idle connections kept for reuse, at most; a burst beyond it opens and closes the rest.
MAX_IDLE = 64
FAILURES = (redis.exceptions.RedisError, OSError, TimeoutError)


def _tls(config: StateStoreConfig, env: Mapping[str, str]) -> dict[str, Any]:
    """For rediss://: the server's certificate verified, chain and host name, against the
    Agent's CA (`ca_env`) or else the default trust store (the image's, or SSL_CERT_FILE)."""
    if not config.url.startswith("rediss://"):
        return {}
    ca = env.get(config.ca_env) if config.ca_env else None
    return {"ssl_cert_reqs": "required", "ssl_check_hostname": True, "ssl_ca_data": ca or None}


class Unavailable(Exception):
    """The store did not answer (or answered with an error); `operation` says for what."""

    def __init__(self, operation: str, cause: BaseException) -> None:
        super().__init__(f"the state store failed on {operation}: {type(cause).__name__}")
        self.operation = operation
        self.cause = cause


class Store:
    """The shared store of one Agent."""

    def __init__(
        self,
        config: StateStoreConfig,
        env: Mapping[str, str],
        namespace: str,
        agent: str,
        *,
        timeout: float,
        observe: Observer = lambda operation, seconds, error: None,
    ) -> None:
        password = env.get(config.password_env) if config.password_env else None
        # A connection factory only: the pool's own checkout is not used (see above). No
        # socket timeout of its own either: each operation runs under one asyncio timeout.
        self._factory = redis.asyncio.ConnectionPool.from_url(
            config.url,
            password=password or None,
            **_tls(config, env),
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
            health_check_interval=0,
        )
        self._timeout = timeout
        self._idle: list[AbstractConnection] = []
        self._observe = observe
        self.prefix = f"corral:{{{namespace}/{agent}}}:"

    def caller(self, digest: str) -> str:
        """The key prefix of one caller (an API key's hash, or the whole Agent)."""
        return f"{self.prefix}{digest}:"

    async def run(self, call: storescripts.Call) -> Any:
        """Run one script call; its reply."""
        return (await self.run_all([call]))[0]

    async def run_all(self, calls: Sequence[storescripts.Call]) -> list[Any]:
        """Run script calls pipelined in one round trip (timed as the last one's operation);
        their replies in order. Each ran at most once: a failure may leave some run and
        others not."""
        return await self._timed(calls[-1].script.name, self._pipelined(calls))

    async def history(self, key: str) -> list[bytes]:
        command = storescripts.command("LRANGE", key, 0, -1)
        items: list[bytes] = (await self._timed(HISTORY, self._exchange(command, 1)))[0]
        return items

    async def aclose(self) -> None:
        idle, self._idle = self._idle, []
        for connection in idle:
            await connection.disconnect()

    async def _timed(self, operation: str, exchange: Awaitable[list[Any]]) -> list[Any]:
        """The replies of `exchange`, timed and observed; any failure, an error reply
        included, as Unavailable."""
        started = time.perf_counter()
        try:
            replies = await exchange
            for reply in replies:
                if isinstance(reply, redis.exceptions.ResponseError):
                    raise reply
        except FAILURES as err:
            self._observe(operation, time.perf_counter() - started, type(err).__name__)
            raise Unavailable(operation, err) from err
        self._observe(operation, time.perf_counter() - started, "")
        return replies

    async def _pipelined(self, calls: Sequence[storescripts.Call]) -> list[Any]:
        payload = b"".join([call.evalsha() for call in calls])
        replies = await self._exchange(payload, len(calls))
        if any(isinstance(reply, redis.exceptions.NoScriptError) for reply in replies):
            # The store restarted and forgot its scripts: none of these calls ran.
            scripts = {call.script.sha: call.script for call in calls}.values()
            loads = b"".join(script.load() for script in scripts)
            replies = await self._exchange(loads + payload, len(scripts) + len(calls))
            return replies[len(scripts) :]
        return replies

    async def _exchange(self, payload: bytes, replies: int) -> list[Any]:
        """Send `payload` and read `replies` replies (an error reply as its exception) on a
        connection of its own for the time being; a failed connection is dropped."""
        connection = await self._checkout()
        try:
            async with asyncio.timeout(self._timeout):
                if not connection.is_connected:
                    await connection.connect()  # type: ignore[no-untyped-call]
                await connection.send_packed_command(payload, check_health=False)
                answers: list[Any] = []
                for _ in range(replies):
                    try:
                        answers.append(await connection.read_response())
                    except redis.exceptions.ResponseError as err:
                        answers.append(err)  # the connection is fine: read the next one
        except BaseException as err:
            # A failure says the server went away (drop the idle ones too); a cancelled call
            # (its client left) only leaves this connection mid-reply.
            await self._drop(connection, idle_too=isinstance(err, FAILURES))
            raise
        if len(self._idle) < MAX_IDLE:
            self._idle.append(connection)
        else:
            await connection.disconnect()
        return answers

    async def _checkout(self) -> AbstractConnection:
        while self._idle:
            connection = self._idle.pop()
            try:
                # What redis-py's pool checks before reuse: closed by the server, or holding
                # data nobody asked for.
                if not await connection.can_read_destructive():  # type: ignore[no-untyped-call]
                    return connection
            except FAILURES:
                pass
            await self._drop(connection, idle_too=True)
        made: AbstractConnection = self._factory.make_connection()  # type: ignore[no-untyped-call]
        return made

    async def _drop(self, connection: AbstractConnection, *, idle_too: bool) -> None:
        """Close a connection that cannot be reused, and with `idle_too` every idle one."""
        idle: list[AbstractConnection] = []
        if idle_too:
            idle, self._idle = self._idle, []
        for each in (connection, *idle):
            with contextlib.suppress(*FAILURES):
                await each.disconnect(nowait=True)
