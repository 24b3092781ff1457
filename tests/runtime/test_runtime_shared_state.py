"""Rate limits, budgets and sessions shared by several replicas through a real redis-server.

The replicas are real `corral runtime` processes (tests/runtime/replicas.py) or, where a test
needs an injected clock, apps served in this process with one clock between them; the client
is the official `openai` SDK; the store is a real redis-server started per test.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import time
from collections.abc import Callable, Iterator
from typing import Any

import openai
import pytest
import redis
from replicas import Replicas
from runtime_harness import AGENT, Running, agent_config, sample

import redisserver
from corral.api.runtimeconfig import RuntimeConfig
from corral.runtime.settings import Settings
from fakes import scripts
from fakes.openai_server import FakeOpenAI

PASSWORD_ENV = "CORRAL_STATE_STORE_PASSWORD"
USER = [{"role": "user", "content": "hi"}]
IN_PROCESS = Settings(state_store_timeout_seconds=5)
"""For the replicas served in this process under many concurrent clients: they share its GIL
with those clients, so on a loaded machine an event loop can wait longer than the default
0.5 s for its turn, and its store round trip counts as the store being unreachable (a 503:
this harness, not the store). What an unreachable store does is proved with a stopped one."""


def shared_config(
    upstream: str | tuple[str, str],
    store: redisserver.RedisServer,
    *more: str,
    policy: str = "FailClosed",
    **fields: Any,
) -> RuntimeConfig:
    return agent_config(
        upstream,
        *more,
        stateStore={"url": store.url, "passwordEnv": PASSWORD_ENV, "failurePolicy": policy},
        **fields,
    )


def store_env(store: redisserver.RedisServer) -> dict[str, str]:
    return {PASSWORD_ENV: store.password or ""}


def eventually(check: Callable[[], bool], limit: float = 30.0) -> bool:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return check()


def counter(store: redis.Redis, pattern: str) -> int:
    """The value of the one key matching `pattern` (0 when none)."""
    keys = list(store.scan_iter(match=pattern))
    assert len(keys) <= 1, keys
    return int(store.get(keys[0]) or 0) if keys else 0


class Clock:
    """A wall clock the test moves; shared by in-process replicas."""

    def __init__(self, when: str) -> None:
        self.now = dt.datetime.fromisoformat(when).timestamp()

    def set(self, when: str) -> None:
        self.now = dt.datetime.fromisoformat(when).timestamp()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def replicas_of() -> Iterator[Callable[..., Replicas]]:
    started: list[Replicas] = []

    def start(config: RuntimeConfig, count: int, env: dict[str, str]) -> Replicas:
        group = Replicas(config, count, env)
        started.append(group)
        return group

    yield start
    for group in started:
        group.close()


# -- rate limits across replicas -------------------------------------------------------------


def test_64_clients_over_3_replicas_get_exactly_the_limit_in_every_window(
    serve: Callable[..., Running],
    upstream: FakeOpenAI,
    redis_server: redisserver.RedisServer,
) -> None:
    """Each minute of the injected clock, 64 clients spread over 3 replicas hammer until
    refused; the store admits exactly what the limit allows per window, no more, no less."""
    limit = 120
    clock = Clock("2026-03-01T12:00:00+00:00")
    config = shared_config(upstream.base_url, redis_server, rateLimit={"requestsPerMinute": limit})
    apps = [
        serve(config, env=store_env(redis_server), settings=IN_PROCESS, wall_clock=clock)
        for _ in range(3)
    ]

    async def window() -> int:
        clients = [apps[i % 3].async_client() for i in range(64)]

        async def until_refused(client: openai.AsyncOpenAI) -> int:
            admitted = 0
            while True:
                try:
                    await client.chat.completions.create(model=AGENT, messages=USER)
                except openai.RateLimitError:
                    return admitted
                admitted += 1

        try:
            return sum(await asyncio.gather(*(until_refused(c) for c in clients)))
        finally:
            for client in clients:
                await client.close()

    admitted = []
    for _ in range(5):
        admitted.append(asyncio.run(window()))
        clock.now += 60

    assert admitted == [limit] * 5
    assert len(upstream.requests) == 5 * limit


def test_64_clients_over_3_runtime_processes_never_exceed_the_shared_limit(
    upstream: FakeOpenAI,
    redis_server: redisserver.RedisServer,
    replicas_of: Callable[..., Replicas],
) -> None:
    """The same on the real clock with `corral runtime` processes: at every checkpoint the
    replicas together have admitted no more than the burst plus the refill since the start.
    (The load runs until the bucket has refused at least 64 times, however slow the machine.)"""
    limit = 300  # per minute: a burst of 300, then 5 per second
    config = shared_config(upstream.base_url, redis_server, rateLimit={"requestsPerMinute": limit})
    group = replicas_of(config, 3, store_env(redis_server))
    checkpoints, step = 4, 2.5
    admitted_at: list[float] = []
    refused = 0

    async def client_loop(index: int, until: float) -> None:
        nonlocal refused
        client = group[index % 3].async_client()
        rng = random.Random(index)
        hard_stop = until + 120  # a slow machine takes longer to empty the bucket
        try:
            while (time.monotonic() < until or refused < 64) and time.monotonic() < hard_stop:
                try:
                    await client.chat.completions.create(model=AGENT, messages=USER)
                    admitted_at.append(time.monotonic())
                except openai.RateLimitError as limited:
                    refused += 1
                    wait = int(limited.response.headers["retry-after-ms"]) / 1000
                    await asyncio.sleep(min(wait, 0.2) * rng.uniform(0.5, 1.0))
        finally:
            await client.close()

    async def run() -> float:
        started = time.monotonic()
        until = started + checkpoints * step
        await asyncio.gather(*(client_loop(i, until) for i in range(64)))
        return started

    started = asyncio.run(run())

    assert refused >= 64
    assert len(admitted_at) >= limit, "the burst was admitted"
    rate = limit / 60
    for checkpoint in range(1, checkpoints + 1):
        end = started + checkpoint * step
        so_far = sum(1 for moment in admitted_at if moment <= end)
        assert so_far <= limit + rate * checkpoint * step, (checkpoint, so_far)
    assert len(admitted_at) <= limit + rate * (max(admitted_at) - started)
    assert len(upstream.requests) == len(admitted_at)


def test_a_burst_over_3_replicas_admits_exactly_the_limit(
    serve: Callable[..., Running],
    upstream: FakeOpenAI,
    redis_server: redisserver.RedisServer,
) -> None:
    clock = Clock("2026-03-01T12:00:00+00:00")  # frozen: nothing refills during the burst
    config = shared_config(upstream.base_url, redis_server, rateLimit={"requestsPerMinute": 10})
    apps = [
        serve(config, env=store_env(redis_server), settings=IN_PROCESS, wall_clock=clock)
        for _ in range(3)
    ]

    async def burst() -> list[BaseException | object]:
        clients = [app.async_client() for app in apps]
        try:
            calls = [
                clients[i % 3].chat.completions.create(model=AGENT, messages=USER)
                for i in range(60)
            ]
            return await asyncio.gather(*calls, return_exceptions=True)
        finally:
            for client in clients:
                await client.close()

    results = asyncio.run(burst())

    refused = [r for r in results if isinstance(r, openai.RateLimitError)]
    assert (len(results) - len(refused), len(refused)) == (10, 50)
    headers = refused[0].response.headers
    assert headers["x-ratelimit-limit-requests"] == "10"
    assert headers["x-ratelimit-remaining-requests"] == "0"
    assert int(headers["retry-after"]) >= 1
    rejections = sum(
        sample(app.metrics(), "corral_ratelimit_rejections_total", kind="requests") or 0
        for app in apps
    )
    assert rejections == 50
    keys = [k.decode() for k in redis_server.client().keys("*")]
    assert keys, "the limiter keeps its state in the store"
    assert all(k.startswith("corral:{default/support}:") for k in keys)
    assert all(redis_server.client().pttl(k) > 0 for k in keys), "every key expires"


# -- budgets ----------------------------------------------------------------------------------


def test_a_token_budget_resets_at_the_utc_day_and_month_boundaries(
    serve: Callable[..., Running],
    upstream: FakeOpenAI,
    redis_server: redisserver.RedisServer,
) -> None:
    upstream.default = scripts.text("ok", usage=(10, 5))  # 15 tokens per answer
    clock = Clock("2026-01-30T23:59:00+00:00")
    config = shared_config(
        upstream.base_url,
        redis_server,
        budget={"tokensPerDay": 45, "tokensPerMonth": 75},
        auth={"apiKeysEnv": "KEYS"},
    )
    env = {**store_env(redis_server), "KEYS": "sk-client-one"}
    apps = [serve(config, env=env, wall_clock=clock) for _ in range(2)]
    store = redis_server.client()

    def ask(index: int) -> Any:
        client = apps[index % 2].client(api_key="sk-client-one")
        return client.chat.completions.with_raw_response.create(
            model=AGENT, messages=USER, max_tokens=5
        )

    def spent(kind: str, window: str) -> int:
        return counter(store, f"corral:{{default/support}}:*:{kind}:{window}")

    for index in range(3):  # 45 tokens: the day is spent
        answer = ask(index)
        assert eventually(lambda index=index: spent("td", "20260130") == 15 * (index + 1))
    assert answer.headers["x-corral-budget-remaining-tokens-day"] in {"0", "5", "10", "15"}
    with pytest.raises(openai.RateLimitError) as refused:
        ask(3)
    assert refused.value.code == "budget_exceeded"
    assert refused.value.response.headers["retry-after"] == "60"  # until 00:00 UTC
    assert "daily tokens budget" in refused.value.message

    clock.set("2026-01-31T00:00:10+00:00")  # a new day, the same month (45 of 75 spent)
    ask(4)
    ask(5)
    assert eventually(lambda: spent("tm", "202601") == 75)
    with pytest.raises(openai.RateLimitError) as refused:
        ask(6)
    assert refused.value.response.headers["retry-after"] == str(86400 - 10)  # until February
    assert "monthly tokens budget" in refused.value.message

    clock.set("2026-02-01T00:00:00+00:00")  # a new month
    ask(7)
    assert eventually(lambda: spent("tm", "202602") == 15)
    assert (spent("td", "20260130"), spent("td", "20260131"), spent("td", "20260201")) == (
        45, 30, 15,
    )  # fmt: skip
    assert len(upstream.requests) == 6
    assert all(store.pttl(key) > 0 for key in store.keys("*"))
    assert not any(b"sk-client-one" in key for key in store.keys("*"))
    refusals = sum(
        sample(app.metrics(), "corral_budget_rejections_total", kind="tokens") or 0 for app in apps
    )
    assert refusals == 2


def test_a_streamed_answer_is_charged_its_real_usage_and_its_cost(
    serve: Callable[..., Running],
    upstream: FakeOpenAI,
    redis_server: redisserver.RedisServer,
) -> None:
    upstream.default = scripts.text("one two three four", usage=(120, 480))
    config = shared_config(
        upstream.base_url,
        redis_server,
        budget={"tokensPerDay": 100_000, "costPerDay": "10.00"},
        models=[
            {
                "provider": "openai",
                "name": "model-0",
                "baseURL": upstream.base_url,
                "pricing": {"promptPerMillion": "0.15", "completionPerMillion": "0.60"},
            }
        ],
    )
    app = serve(config, env=store_env(redis_server))
    store = redis_server.client()

    stream = app.client().chat.completions.create(
        model=AGENT,
        messages=USER,
        max_tokens=1000,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)

    assert chunks[-1].usage is not None
    assert chunks[-1].usage.total_tokens == 600
    expected_nano = 120 * 150 + 480 * 600  # 0.15 and 0.60 USD per million tokens
    assert eventually(lambda: counter(store, "*:td:*") == 600)
    assert eventually(lambda: counter(store, "*:cd:*") == expected_nano)
    assert sample(app.metrics(), "corral_spend_usd_total") == pytest.approx(expected_nano / 1e9)


def test_a_stream_that_breaks_is_still_charged_what_it_produced(
    serve: Callable[..., Running],
    upstream: FakeOpenAI,
    redis_server: redisserver.RedisServer,
) -> None:
    upstream.default = scripts.text("alpha beta gamma delta", break_after=2, usage=(9, 9))
    config = shared_config(upstream.base_url, redis_server, budget={"tokensPerDay": 100_000})
    app = serve(config, env=store_env(redis_server))
    store = redis_server.client()

    with pytest.raises(openai.APIError):
        list(app.client().chat.completions.create(model=AGENT, messages=USER, stream=True))

    # Not the reservation (which held 1024 completion tokens), not zero: the estimate of the
    # prompt and of the two chunks that were produced.
    assert eventually(lambda: 0 < counter(store, "*:td:*") < 100)
    assert store.keys("*:r:*") == [], "the reservation was settled"


def test_failover_and_retries_are_charged_once(
    serve: Callable[..., Running],
    redis_server: redisserver.RedisServer,
) -> None:
    with FakeOpenAI() as primary, FakeOpenAI() as fallback:
        primary.default = scripts.Reply(status=503, message="overloaded")
        fallback.default = scripts.text("from the fallback", usage=(11, 7))
        config = shared_config(
            primary.base_url,
            redis_server,
            fallback.base_url,
            budget={"tokensPerDay": 100_000},
        )
        app = serve(config, env=store_env(redis_server))
        store = redis_server.client()

        answer = app.client().chat.completions.create(model=AGENT, messages=USER)

        assert answer.usage is not None
        assert answer.usage.total_tokens == 18
        assert len(primary.requests) >= 2, "the primary was retried before failing over"
        # Every reservation settled (each settle deletes its ticket): the count is final.
        assert eventually(lambda: store.keys("*:r:*") == [])
        assert counter(store, "*:td:*") == 18


def test_each_turn_of_the_tool_loop_reserves_before_it_calls(
    serve: Callable[..., Running],
    upstream: FakeOpenAI,
    redis_server: redisserver.RedisServer,
    tool_server: Any,
) -> None:
    from runtime_harness import ToolReply

    tool_server.routes["/orders/7"] = ToolReply(body={"status": "shipped"})
    upstream.enqueue(
        scripts.tool_calls(scripts.call("lookup", {"id": "7"}), usage=(40, 10)),
        scripts.text("it shipped", usage=(60, 5)),
    )
    tool = {
        "name": "lookup",
        "description": "Look up an order",
        "parameters": {"type": "object", "properties": {"id": {"type": "string"}}},
        "http": {"url": f"{tool_server.url}/orders/{{id}}"},
    }
    # The first turn fits (reserve ~20 + max_tokens 100); after it (50 spent) the second
    # turn's reservation (its longer conversation + 100) does not.
    config = shared_config(
        upstream.base_url, redis_server, budget={"tokensPerDay": 200}, tools=[tool]
    )
    app = serve(config, env=store_env(redis_server))
    store = redis_server.client()

    with pytest.raises(openai.RateLimitError) as refused:
        app.client().chat.completions.create(model=AGENT, messages=USER, max_tokens=100)

    assert refused.value.code == "budget_exceeded"
    assert len(upstream.requests) == 1, "the second model turn was refused before its call"
    assert eventually(lambda: counter(store, "*:td:*") == 50)


# -- the store going away ---------------------------------------------------------------------


def test_a_store_restart_mid_load_gives_only_503s_and_loses_or_doubles_no_count(
    upstream: FakeOpenAI,
    redis_server: redisserver.RedisServer,
    replicas_of: Callable[..., Replicas],
) -> None:
    upstream.default = scripts.text("ok", usage=(3, 4))
    config = shared_config(upstream.base_url, redis_server, budget={"tokensPerDay": 10**9})
    group = replicas_of(config, 3, store_env(redis_server))
    statuses: dict[int, int] = {}
    codes: set[str | None] = set()
    retry_afters: set[str | None] = set()
    used = 0

    async def client_loop(index: int, stop: asyncio.Event) -> None:
        nonlocal used
        client = group[index % 3].async_client()
        try:
            while not stop.is_set():
                try:
                    answer = await client.chat.completions.create(model=AGENT, messages=USER)
                except openai.APIStatusError as failed:
                    statuses[failed.status_code] = statuses.get(failed.status_code, 0) + 1
                    codes.add(failed.code)
                    retry_afters.add(failed.response.headers.get("retry-after"))
                    await asyncio.sleep(0.02)
                    continue
                statuses[200] = statuses.get(200, 0) + 1
                assert answer.usage is not None
                used += answer.usage.total_tokens
        finally:
            await client.close()

    async def until(status: int, count: int) -> None:
        """Until `count` answers with `status` (bounded: a slow machine only takes longer)."""
        for _ in range(2400):  # 120 s at most
            if statuses.get(status, 0) >= count:
                return
            await asyncio.sleep(0.05)

    async def run() -> None:
        stop = asyncio.Event()
        clients = [asyncio.create_task(client_loop(i, stop)) for i in range(16)]
        await until(200, 30)
        await asyncio.to_thread(redis_server.stop)
        await until(503, 16)
        await asyncio.to_thread(redis_server.start)
        await until(200, statuses.get(200, 0) + 30)
        stop.set()
        await asyncio.gather(*clients)

    asyncio.run(run())

    assert set(statuses) <= {200, 503}, statuses
    assert statuses.get(503, 0) >= 16, "while the store was down, FailClosed answered 503"
    assert codes == {"state_store_unavailable"}
    assert retry_afters == {"1"}
    assert statuses[200] >= 60
    store = redis_server.client()
    assert eventually(lambda: counter(store, "*:td:*") == used), (counter(store, "*:td:*"), used)
    assert eventually(lambda: store.keys("*:r:*") == [])


def test_fail_open_serves_under_per_replica_limits_and_says_so(
    upstream: FakeOpenAI,
    redis_server: redisserver.RedisServer,
    replicas_of: Callable[..., Replicas],
) -> None:
    config = shared_config(
        upstream.base_url, redis_server, policy="FailOpen", rateLimit={"requestsPerMinute": 2}
    )
    group = replicas_of(config, 1, store_env(redis_server))
    replica = group[0]
    redis_server.stop()

    client = replica.client()
    client.chat.completions.create(model=AGENT, messages=USER)
    client.chat.completions.create(model=AGENT, messages=USER)
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(model=AGENT, messages=USER)

    metrics = replica.metrics()
    assert sample(metrics, "corral_state_store_fallbacks_total") == 3
    assert sample(metrics, "corral_state_store_up") == 0
    assert (sample(metrics, "corral_state_store_errors_total", operation="admit") or 0) >= 3
    assert "state store unreachable" in replica.child.log()
    assert "FailOpen" in replica.child.log()
    assert "test-store-password" not in replica.child.log()


def test_fail_closed_answers_503_with_retry_after_while_the_store_is_down(
    serve: Callable[..., Running],
    upstream: FakeOpenAI,
    redis_server: redisserver.RedisServer,
) -> None:
    config = shared_config(upstream.base_url, redis_server, rateLimit={"requestsPerMinute": 100})
    app = serve(config, env=store_env(redis_server))
    app.client().chat.completions.create(model=AGENT, messages=USER)
    redis_server.stop()

    with pytest.raises(openai.InternalServerError) as failed:
        app.client().chat.completions.create(model=AGENT, messages=USER)

    assert failed.value.status_code == 503
    assert failed.value.code == "state_store_unavailable"
    assert failed.value.response.headers["retry-after"] == "1"
    assert len(upstream.requests) == 1
    redis_server.start()
    app.client().chat.completions.create(model=AGENT, messages=USER)
    assert sample(app.metrics(), "corral_state_store_up") == 1


# -- sessions ---------------------------------------------------------------------------------


def test_a_conversation_alternates_over_3_replicas_and_outlives_a_replica_restart(
    upstream: FakeOpenAI,
    redis_server: redisserver.RedisServer,
    replicas_of: Callable[..., Replicas],
) -> None:
    config = shared_config(
        upstream.base_url,
        redis_server,
        memory={"enabled": True, "maxMessages": 50},
        auth={"apiKeysEnv": "KEYS"},
    )
    group = replicas_of(config, 3, {**store_env(redis_server), "KEYS": "sk-alice\nsk-bob"})
    session = {"x-session-id": "conv-1"}

    def say(index: int, text: str, key: str = "sk-alice") -> None:
        group[index].client(api_key=key).chat.completions.create(
            model=AGENT, messages=[{"role": "user", "content": text}], extra_headers=session
        )

    def last_prompt() -> list[str]:
        return [m["content"] for m in upstream.requests[-1].body["messages"]]

    say(0, "one")
    say(1, "two")
    say(2, "three")
    assert last_prompt() == [
        "one", "Hello from the fake.", "two", "Hello from the fake.", "three",
    ]  # fmt: skip

    group.restart(1)
    say(1, "four")
    assert last_prompt()[-3:] == ["three", "Hello from the fake.", "four"]
    assert len(last_prompt()) == 7

    say(2, "bob here", key="sk-bob")  # the same session id under another key: not shared
    assert last_prompt() == ["bob here"]
    assert all(redis_server.client().pttl(k) > 0 for k in redis_server.client().keys("*"))


def test_sessions_in_the_store_keep_the_memory_bounds(
    serve: Callable[..., Running],
    upstream: FakeOpenAI,
    redis_server: redisserver.RedisServer,
) -> None:
    config = shared_config(
        upstream.base_url,
        redis_server,
        memory={"enabled": True, "maxMessages": 3, "ttlSeconds": 600, "maxSessions": 2},
    )
    apps = [serve(config, env=store_env(redis_server)) for _ in range(2)]
    store = redis_server.client()

    def say(index: int, session: str, text: str) -> list[str]:
        apps[index % 2].client().chat.completions.create(
            model=AGENT,
            messages=[{"role": "user", "content": text}],
            extra_headers={"x-session-id": session},
        )
        return [m["content"] for m in upstream.requests[-1].body["messages"]]

    say(0, "a", "one")
    say(1, "a", "two")
    # Four kept messages were over the bound of 3: the oldest went, and so did the answer it
    # left at the front (a history never starts on an answer).
    assert say(0, "a", "three") == ["two", "Hello from the fake.", "three"]
    session_key = next(iter(store.scan_iter(match="*:s:a")))
    assert 0 < store.pttl(session_key) <= 600_000
    assert store.llen(session_key) == 2  # "three" and its answer: the cap of 3 dropped "two"

    say(1, "b", "bee")
    say(0, "c", "sea")  # a third session: the least recently used one ("a") is evicted
    assert list(store.scan_iter(match="*:s:a")) == []
    assert say(1, "a", "again") == ["again"]
