"""The state store client and admission's shared path, in this process, against a real
redis-server: connections that outlive a store restart, scripts the store forgot, settles
carried by the next admit or sent together in one round trip and kept through an outage,
and bucket time stamps that never go back.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from runtime_harness import agent_config

import redisserver
from corral.runtime import admission, errors, pricing, ratelimit, statestore
from corral.runtime.auth import Principal

PASSWORD_ENV = "CORRAL_STATE_STORE_PASSWORD"
CALLER = Principal("agent")


class Clock:
    def __init__(self, now: float = 1_790_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Gate:
    """An Admission over a real Store, as the app builds them; `operations` records every
    round trip the store made as (operation, error type or "")."""

    def __init__(
        self, server: redisserver.RedisServer, clock: Clock | None = None, **fields: Any
    ) -> None:
        config = agent_config(
            "http://127.0.0.1:1/v1",
            stateStore={"url": server.url, "passwordEnv": PASSWORD_ENV},
            **({"budget": {"tokensPerDay": 10**9}} | fields),
        )
        assert config.state_store is not None
        self.operations: list[tuple[str, str]] = []
        self.store = statestore.Store(
            config.state_store,
            {PASSWORD_ENV: server.password or ""},
            config.namespace,
            config.agent,
            timeout=2.0,
            observe=lambda operation, seconds, error: self.operations.append((operation, error)),
        )
        self.admission = admission.Admission(
            config,
            ratelimit.RateLimiter(config.rate_limit),
            self.store,
            pricing.Prices(config.models),
            wall_clock=clock or Clock(),
        )

    async def aclose(self) -> None:
        await self.admission.aclose()
        await self.store.aclose()


def run(server: redisserver.RedisServer, body: Callable[[Gate], Awaitable[None]]) -> Gate:
    async def main() -> Gate:
        gate = Gate(server)
        try:
            await body(gate)
        finally:
            await gate.aclose()
        return gate

    return asyncio.run(main())


def spent_today(store: redis.Redis) -> int:
    keys = list(store.scan_iter(match="*:td:*"))
    assert len(keys) == 1, keys
    return int(store.get(keys[0]) or 0)


def test_idle_connections_to_a_restarted_store_are_replaced_without_an_error(
    redis_server: redisserver.RedisServer,
) -> None:
    async def body(gate: Gate) -> None:
        gate.admission.settle(await gate.admission.admit(CALLER, 10, 0), 10, 0)
        await gate.admission.settled()
        await asyncio.to_thread(redis_server.restart)
        # The connections kept idle lead to the old process: they must not fail a request.
        gate.admission.settle(await gate.admission.admit(CALLER, 10, 0), 7, 0)
        await gate.admission.settled()

    gate = run(redis_server, body)

    assert all(error == "" for _, error in gate.operations), gate.operations
    assert spent_today(redis_server.client()) == 17


def test_a_store_that_forgot_its_scripts_is_given_them_again_within_the_call(
    redis_server: redisserver.RedisServer,
) -> None:
    async def body(gate: Gate) -> None:
        gate.admission.settle(await gate.admission.admit(CALLER, 10, 0), 10, 0)
        await gate.admission.settled()
        redis_server.client().script_flush()
        gate.admission.settle(await gate.admission.admit(CALLER, 10, 0), 5, 0)
        await gate.admission.settled()

    gate = run(redis_server, body)

    assert gate.operations == [("admit", ""), ("settle", "")] * 2
    assert spent_today(redis_server.client()) == 15


def test_settles_waiting_together_are_sent_in_one_round_trip(
    redis_server: redisserver.RedisServer,
) -> None:
    async def body(gate: Gate) -> None:
        tickets = [await gate.admission.admit(CALLER, 100, 0) for _ in range(50)]
        for ticket in tickets:
            gate.admission.settle(ticket, 3, 0)
        await gate.admission.settled()

    gate = run(redis_server, body)

    assert gate.operations.count(("settle", "")) == 1
    store = redis_server.client()
    assert store.keys("*:r:*") == [], "every ticket was settled"
    assert spent_today(store) == 50 * 3


def test_a_settle_made_while_the_store_is_down_lands_once_it_is_back(
    redis_server: redisserver.RedisServer,
) -> None:
    async def body(gate: Gate) -> None:
        ticket = await gate.admission.admit(CALLER, 100, 0)
        await asyncio.to_thread(redis_server.stop)
        gate.admission.settle(ticket, 42, 0)
        await asyncio.sleep(0.3)  # a few attempts fail meanwhile
        await asyncio.to_thread(redis_server.start)
        await gate.admission.settled()

    gate = run(redis_server, body)

    failed = [error for operation, error in gate.operations if operation == "settle" and error]
    assert failed, "the settle was tried while the store was down"
    assert gate.operations[-1] == ("settle", "")
    store = redis_server.client()
    assert spent_today(store) == 42
    assert store.keys("*:r:*") == []


def test_a_settle_stamped_earlier_than_the_bucket_refills_nothing(
    redis_server: redisserver.RedisServer,
) -> None:
    """A replica whose clock lags (or a settle that waited out an outage) must not move the
    bucket's time stamp back: the next check would count the same seconds twice."""
    clock = Clock()

    async def main() -> dict[str, str]:
        gate = Gate(redis_server, clock, rateLimit={"tokensPerMinute": 600})  # 10 a second
        try:
            ticket = await gate.admission.admit(CALLER, 100, 0)  # 600 -> 500
            clock.now -= 10
            gate.admission.settle(ticket, 90, 0)  # 10 back -> 510, stamped 10 s earlier
            await gate.admission.settled()
            clock.now += 10
            return (await gate.admission.admit(CALLER, 500, 0)).headers
        finally:
            await gate.aclose()

    headers = asyncio.run(main())

    assert headers["x-ratelimit-remaining-tokens"] == "10"


def test_ticket_ids_differ_between_replicas(redis_server: redisserver.RedisServer) -> None:
    async def main() -> None:
        first, second = Gate(redis_server), Gate(redis_server)
        try:
            for gate in (first, second):
                await gate.admission.admit(CALLER, 1, 0)
        finally:
            await first.aclose()
            await second.aclose()

    asyncio.run(main())

    assert len(redis_server.client().keys("*:r:*")) == 2


def test_a_settle_goes_with_the_next_admit_in_its_round_trip(
    redis_server: redisserver.RedisServer,
) -> None:
    seen: dict[str, str] = {}

    async def body(gate: Gate) -> None:
        gate.admission.settle(await gate.admission.admit(CALLER, 100, 0), 30, 0)
        second = await gate.admission.admit(CALLER, 100, 0)
        seen.update(second.headers)
        gate.admission.settle(second, 20, 0)
        await gate.admission.settled()

    gate = run(redis_server, body)

    # The first settle ran just before the second admit (30 spent, then 100 reserved), in its
    # round trip; the last one, with no admit after it, went on its own.
    assert seen["x-corral-budget-remaining-tokens-day"] == str(10**9 - 130)
    assert gate.operations == [("admit", ""), ("admit", ""), ("settle", "")]
    assert spent_today(redis_server.client()) == 50


def test_a_settle_no_admit_carries_is_sent_on_its_own(
    redis_server: redisserver.RedisServer,
) -> None:
    async def body(gate: Gate) -> None:
        gate.admission.settle(await gate.admission.admit(CALLER, 100, 0), 30, 0)
        for _ in range(1000):  # 10 s at most; nothing waits for it but its timer
            if ("settle", "") in gate.operations:
                break
            await asyncio.sleep(0.01)

    gate = run(redis_server, body)

    assert gate.operations == [("admit", ""), ("settle", "")]
    assert spent_today(redis_server.client()) == 30


def test_settles_carried_by_an_admit_that_fails_are_kept_and_land_later(
    redis_server: redisserver.RedisServer,
) -> None:
    async def body(gate: Gate) -> None:
        ticket = await gate.admission.admit(CALLER, 100, 0)
        await asyncio.to_thread(redis_server.stop)
        gate.admission.settle(ticket, 42, 0)
        with pytest.raises(errors.StoreUnavailable):
            await gate.admission.admit(CALLER, 100, 0)  # carries the settle, and fails
        await asyncio.to_thread(redis_server.start)
        await gate.admission.settled()

    run(redis_server, body)

    store = redis_server.client()
    assert spent_today(store) == 42
    assert store.keys("*:r:*") == []


# Keeps the server busy for ARGV[1] ms (a script runs alone: every other call waits for it).
BUSY = """
local t = redis.call('TIME')
local deadline = t[1] * 1000000 + t[2] + ARGV[1] * 1000
repeat t = redis.call('TIME') until t[1] * 1000000 + t[2] >= deadline
return 1
"""


def until_busy(server: redisserver.RedisServer) -> None:
    """Until the server stops answering (it is running the busy script); 30 s at most."""
    for _ in range(300):
        probe = redis.Redis(
            host="127.0.0.1",
            port=server.port,
            password=server.password,
            socket_timeout=0.1,
            retry=Retry(NoBackoff(), 0),
        )
        try:
            probe.ping()
        except redis.TimeoutError:
            return
        finally:
            probe.close()
    raise AssertionError("the busy script did not start")


def test_an_admit_given_up_mid_call_gives_back_what_it_took_and_leaves_the_store_usable(
    redis_server: redisserver.RedisServer,
) -> None:
    async def body(gate: Gate) -> None:
        gate.admission.settle(await gate.admission.admit(CALLER, 3, 0), 3, 0)  # connected
        await gate.admission.settled()
        busy = asyncio.create_task(asyncio.to_thread(redis_server.client().eval, BUSY, 0, 3000))
        await asyncio.to_thread(until_busy, redis_server)
        admit = asyncio.create_task(gate.admission.admit(CALLER, 100, 0))
        await asyncio.sleep(0.2)  # the admit is sent; its reply waits for the busy script
        assert not admit.done()
        admit.cancel()  # as when the request's client leaves
        with pytest.raises(asyncio.CancelledError):
            await admit
        await busy
        gate.admission.settle(await gate.admission.admit(CALLER, 7, 0), 7, 0)
        await gate.admission.settled()

    run(redis_server, body)

    store = redis_server.client()
    # The given-up admit ran once the busy script ended; its 100 were given back.
    assert spent_today(store) == 3 + 7
    assert store.keys("*:r:*") == []
