"""The shared store client: one Redis-protocol connection pool and the scripts it runs.

Built once by the app's lifespan from `config.stateStore` (the password from the env var the
Deployment fills by secretKeyRef). Every operation is one round trip (a script by EVALSHA, or
one plain command), timed and counted by operation; any failure (refused, reset, timed out, an
error reply) becomes `Unavailable`, which admission maps to the Agent's failure policy. The
client retries nothing itself: a down store must be noticed at once, not after a backoff.
Keys are `corral:{NAMESPACE/AGENT}:...`: the hash tag keeps one Agent's keys in one slot, and
callers appear only as a hash of their API key. Does network I/O; called by admission and
the shared sessions.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, cast

import redis.asyncio
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from corral.api.runtimeconfig import StateStoreConfig
from corral.runtime import storescripts

# The outcome of one store operation: (operation, seconds, error type or "").
Observer = Callable[[str, float, str], None]

ADMIT = "admit"
SETTLE = "settle"
HISTORY = "history"
REMEMBER = "remember"


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
        self._client = redis.asyncio.Redis.from_url(
            config.url,
            password=password or None,
            **_tls(config, env),
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
            health_check_interval=0,
        )
        self._observe = observe
        self.prefix = f"corral:{{{namespace}/{agent}}}:"
        self._admit = self._client.register_script(storescripts.ADMIT)
        self._settle = self._client.register_script(storescripts.SETTLE)
        self._remember = self._client.register_script(storescripts.REMEMBER)

    def caller(self, digest: str) -> str:
        """The key prefix of one caller (an API key's hash, or the whole Agent)."""
        return f"{self.prefix}{digest}:"

    async def admit(self, keys: Sequence[str], args: Sequence[Any]) -> list[Any]:
        reply: list[Any] = await self._run(ADMIT, self._admit, keys, args)
        return reply

    async def settle(self, keys: Sequence[str], args: Sequence[Any]) -> int:
        return int(await self._run(SETTLE, self._settle, keys, args))

    async def remember(self, keys: Sequence[str], args: Sequence[Any]) -> int:
        return int(await self._run(REMEMBER, self._remember, keys, args))

    async def history(self, key: str) -> list[bytes]:
        started = time.perf_counter()
        try:
            items = await cast(Awaitable[list[bytes]], self._client.lrange(key, 0, -1))
        except redis.RedisError as err:
            self._observe(HISTORY, time.perf_counter() - started, type(err).__name__)
            raise Unavailable(HISTORY, err) from err
        self._observe(HISTORY, time.perf_counter() - started, "")
        return items

    async def aclose(self) -> None:
        await self._client.aclose()

    async def _run(
        self, operation: str, script: Any, keys: Sequence[str], args: Sequence[Any]
    ) -> Any:
        started = time.perf_counter()
        try:
            reply = await script(keys=keys, args=args)
        except redis.RedisError as err:
            self._observe(operation, time.perf_counter() - started, type(err).__name__)
            raise Unavailable(operation, err) from err
        self._observe(operation, time.perf_counter() - started, "")
        return reply
