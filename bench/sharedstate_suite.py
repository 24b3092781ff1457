"""The shared-state benchmark: what a Redis-backed limit and budget check costs a request, and
how exactly 3 replicas sharing one store hold a limit under 64 clients.

Latency: one `corral runtime` with `rateLimit` (the in-process limiter) against one with the
same limit plus `stateStore` (a real redis-server on loopback) and a token and cost `budget`
(every request: one admit script before the call, one settle script after it), driven by the
same single client, runs alternating, in the same run. Accuracy: 3 runtime processes of one
Agent sharing the store, 64 closed-loop clients spread over them, requests admitted per
window against what the limit allows. Called by `bench.__main__` (`--suite sharedstate`);
starts processes (see `runtimes`) and writes their logs to the work dir.
"""

from __future__ import annotations

import contextlib
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvloop

from bench import figures, procs, runtimes, stats
from bench.figures import Figure
from corral.api.runtimeconfig import RuntimeConfig
from corral.runtime import admission, pricing, ratelimit, statestore
from corral.runtime.auth import Principal

sys.path.insert(0, str(runtimes.REPO / "hack"))
import redisserver  # hack/ is put on the path just above

SECTION = "Shared state (Redis), 1 worker per replica"
# Seconds of unmeasured load after the shared bucket is empty.
RATE_SETTLE = 1.0
UNLIMITED = {"requestsPerMinute": 1_000_000, "tokensPerMinute": 1_000_000_000}
PRICING = {"promptPerMillion": "0.15", "completionPerMillion": "0.60"}


@dataclass(frozen=True)
class Budget:
    # Many short alternating runs: the median of the run-by-run differences holds up best on a
    # machine shared with other work.
    runs: int = 11
    duration: float = 1.5
    warmup: float = 0.3
    chunks: int = 16
    checks: int = 2000
    replicas: int = 3
    clients: int = 64
    rpm: int = 1200
    rate_windows: int = 5
    rate_window: float = 5.0


# (wall, CPU) microseconds per check, one pair per run.
_Runs = list[tuple[float, float]]

FULL = Budget()
QUICK = Budget(runs=2, duration=1.0, warmup=0.2, checks=300, rate_windows=2, rate_window=2.0)

METHOD = """\
The store is Debian's redis-server {redis} (hack/redisserver.py) on loopback, no persistence
tuning. Latency: two `corral runtime` processes in front of the same fake upstream
(`bench/upstream.py`), one with `rateLimit` only (per-replica limiter), one with the same
`rateLimit`, a `stateStore` and a `budget` (tokens per day and cost per day, the model
priced): the same single closed-loop client drives each for {duration:g} s after {warmup:g} s
of warm-up, {runs} runs each, alternating. Limits are set far above the load, so every answer
is a 200 and the figure is the check itself. Accuracy: {replicas} runtime processes sharing
the store, {clients} clients spread over them round-robin, {rpm} requests per minute. The check
alone: the same admission objects the runtime builds, in the benchmark process, {checks}
admit-and-settle pairs per run, either each waiting for its settle to land (two round trips)
or as the runtime makes them (the settle not awaited: the next admit carries it in its round
trip), alternating with the in-process limiter, {runs} runs."""


def _shared_fields(url: str, upstream_port: int) -> dict[str, Any]:
    """The runtime config fields of the shared check: the store, a budget, a priced model."""
    return {
        "rateLimit": UNLIMITED,
        "stateStore": {"url": url, "failurePolicy": "FailClosed"},
        "budget": {"tokensPerDay": 10**12, "costPerDay": "999999.00"},
        "models": [
            {
                "provider": "openai",
                "name": "fake-model",
                "baseURL": f"http://127.0.0.1:{upstream_port}/v1",
                "pricing": PRICING,
            }
        ],
    }


def run(budget: Budget, workdir: Path) -> figures.SuiteResult:
    result = figures.SuiteResult("shared state")
    tree = redisserver.install()
    result.method = METHOD.format(
        redis=tree.name.removeprefix("redis-"),
        duration=budget.duration,
        warmup=budget.warmup,
        runs=budget.runs,
        replicas=budget.replicas,
        clients=budget.clients,
        rpm=budget.rpm,
        checks=budget.checks,
    ).replace("\n", " ")
    with redisserver.RedisServer() as store:
        _check_alone(budget, store, result)
        store.client().flushall()
        _latency(budget, workdir, store, result)
        store.client().flushall()
        _accuracy(budget, workdir, store, result)
    return result


def _check_alone(
    budget: Budget, store: redisserver.RedisServer, result: figures.SuiteResult
) -> None:
    """The admission check by itself, in this process: admit, settle and wait for the settle
    to land, `checks` times, against the store and against the in-process limiter."""
    document = {
        **runtimes.runtime_config(1, **_shared_fields(store.url, 1)),
        "agent": "bench",
    }
    config = RuntimeConfig.model_validate(document)
    local_config = config.model_copy(update={"state_store": None, "budget": None})

    async def measure(gate: admission.Admission, wait: bool) -> tuple[float, float]:
        """Per check: `wait`, each settle awaited (its own round trip); else as the runtime
        makes them (not awaited: the next admit carries it)."""
        caller = Principal("agent")
        for _ in range(budget.checks // 10):
            gate.settle(await gate.admit(caller, 100, 1000), 90, 900)
            await gate.settled()
        wall, cpu = time.perf_counter(), time.process_time()
        for _ in range(budget.checks):
            gate.settle(await gate.admit(caller, 100, 1000), 90, 900)
            if wait:
                await gate.settled()
        await gate.settled()
        done = budget.checks / 1e6
        return (time.perf_counter() - wall) / done, (time.process_time() - cpu) / done

    async def all_runs() -> tuple[_Runs, _Runs, _Runs]:
        shared_store = statestore.Store(
            config.state_store,  # type: ignore[arg-type]
            {},
            "bench",
            "bench",
            timeout=0.5,
        )
        prices = pricing.Prices(config.models)
        shared = admission.Admission(
            config, ratelimit.RateLimiter(config.rate_limit), shared_store, prices
        )
        local = admission.Admission(
            local_config, ratelimit.RateLimiter(config.rate_limit), None, prices
        )
        runs: tuple[_Runs, _Runs, _Runs] = ([], [], [])
        try:
            for _ in range(budget.runs):
                runs[0].append(await measure(shared, True))
                runs[1].append(await measure(shared, False))
                runs[2].append(await measure(local, True))
        finally:
            await shared.aclose()
            await shared_store.aclose()
        return runs

    # The event loop the runtime serves on (uvloop, through uvicorn's "auto").
    awaited_runs, carried_runs, local_runs = uvloop.run(all_runs())
    for runs, how in (
        (awaited_runs, "admit + settle awaited"),
        (carried_runs, "admit + settle carried by the next admit, as served"),
    ):
        for index, what in ((0, "wall time"), (1, "CPU")):
            result.figures.append(
                figures.compared(
                    SECTION,
                    f"one check alone, in process ({how}), {what}",
                    "us",
                    [run[index] for run in runs],
                    [run[index] for run in local_runs],
                    "the in-process limiter",
                )
            )
    result.raw["check_alone_us"] = {
        "shared": awaited_runs,
        "shared_carried": carried_runs,
        "local": local_runs,
    }


def _latency(
    budget: Budget, workdir: Path, store: redisserver.RedisServer, result: figures.SuiteResult
) -> None:
    with contextlib.ExitStack() as stack:
        up = stack.enter_context(runtimes.upstream(workdir, budget.chunks))
        shared = _shared_fields(store.url, up.port)
        local = stack.enter_context(
            runtimes.runtime(workdir, "runtime-local-limit", up.port, rateLimit=UNLIMITED)
        )
        remote = stack.enter_context(
            runtimes.runtime(workdir, "runtime-shared-limit", up.port, **shared)
        )
        for served in (local, remote):
            runtimes.drive(served.chat_url, 1, model=runtimes.AGENT, duration=1.0, warmup=0.3)
        local_runs: list[dict[str, Any]] = []
        shared_runs: list[dict[str, Any]] = []
        for _ in range(budget.runs):
            for served, into in ((local, local_runs), (remote, shared_runs)):
                cpu = served.cpu()
                summary = runtimes.drive(
                    served.chat_url,
                    1,
                    model=runtimes.AGENT,
                    duration=budget.duration,
                    warmup=budget.warmup,
                )
                if set(summary["statuses"]) != {"200"}:
                    raise procs.BenchError(f"{served.chat_url} answered {summary['statuses']}")
                summary["server_cpu_per_request_ms"] = (
                    (served.cpu() - cpu) / summary["completed_total"] * 1000
                )
                into.append(summary)
    for quantile, target in (("p50", figures.at_most_added(0.3, "ms")), ("p99", None)):
        result.figures.append(
            figures.compared(
                SECTION,
                f"latency {quantile}, 1 client, shared limit + budget check",
                "ms",
                [r["latency_ms"][quantile] for r in shared_runs],
                [r["latency_ms"][quantile] for r in local_runs],
                "the in-process limiter",
                target=target,
            )
        )
    result.figures.append(
        figures.compared(
            SECTION,
            "runtime CPU per request, 1 client",
            "ms",
            [r["server_cpu_per_request_ms"] for r in shared_runs],
            [r["server_cpu_per_request_ms"] for r in local_runs],
            "the in-process limiter",
        )
    )
    result.raw["latency"] = {"local": local_runs, "shared": shared_runs}


def _accuracy(
    budget: Budget, workdir: Path, store: redisserver.RedisServer, result: figures.SuiteResult
) -> None:
    fields = {
        "rateLimit": {"requestsPerMinute": budget.rpm},
        "stateStore": {"url": store.url},
    }
    with contextlib.ExitStack() as stack:
        up = stack.enter_context(runtimes.upstream(workdir, budget.chunks))
        replicas = [
            stack.enter_context(runtimes.runtime(workdir, f"replica-{i}", up.port, **fields))
            for i in range(budget.replicas)
        ]
        first, others = replicas[0], tuple(r.port for r in replicas[1:])
        drained = runtimes.drive(
            first.chat_url,
            budget.clients,
            model=runtimes.AGENT,
            requests=budget.rpm * 10,
            until_status=429,
            also_ports=others,
        )
        summary = runtimes.drive(
            first.chat_url,
            budget.clients,
            model=runtimes.AGENT,
            duration=budget.rate_window * budget.rate_windows,
            warmup=RATE_SETTLE,
            windows=budget.rate_windows,
            also_ports=others,
        )
    if set(summary["statuses"]) != {"200", "429"}:
        raise procs.BenchError(
            f"{budget.clients} clients over {budget.rpm} requests/minute should see 200s and"
            f" 429s, saw {summary['statuses']}"
        )
    allowed = budget.rpm / 60 * budget.rate_window
    admitted = [float(n) for n in summary["windows_ok"]]
    ratios = [a / allowed for a in admitted]
    median = stats.Spread.of(ratios).median
    result.figures.append(
        Figure(
            section=SECTION,
            name=f"admitted per {budget.rate_window:g} s window, {budget.clients} clients over"
            f" {budget.replicas} replicas, {budget.rpm} rpm",
            unit="requests",
            value=stats.Spread.of(admitted),
            baseline=stats.Spread.of([allowed] * len(admitted)),
            baseline_name="allowed by the limit",
            ratio=stats.Spread.of(ratios),
            added=stats.Spread.of([a - allowed for a in admitted]),
            target=figures.Target(
                "admitted/allowed 1.00", round(median, 2) == 1.0, f"{median:.3f}"
            ),
            note=f"measured once {drained['completed_total']:,} requests had emptied the shared"
            f" bucket and {RATE_SETTLE:g} s more had passed; {summary['statuses']['429']:,}"
            " answers in the windows were 429",
        )
    )
    result.raw["accuracy"] = summary
