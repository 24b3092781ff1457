"""The runtime benchmark (the hot path): the runtime in front of the fake upstream, against the
same load generator calling the upstream directly, in the same run.

Scenarios: throughput and per-request latency at 1, 16 and 64 closed-loop clients, time to
first token of streams, CPU per request (one worker, then as many workers as cores); RSS over
100k requests and over sessions (memory must stay flat); rate-limiter accuracy under 64 clients.
Every paired figure alternates baseline and runtime runs so drift hits both alike. Called by
`bench.__main__`; starts processes (see `runtimes`) and writes their logs to the work dir.
"""

from __future__ import annotations

import contextlib
import os
import re
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import figures, procs, runtimes, stats, upstream
from bench.figures import Figure

MIB = 1024 * 1024
# Seconds of unmeasured load after the bucket is empty, absorbing the refill in between runs.
RATE_SETTLE = 1.0
DIRECT = "upstream direct"


@dataclass(frozen=True)
class Budget:
    """How much to measure; FULL is what `make bench` records, QUICK a smoke run."""

    runs: int = 5
    duration: float = 2.0
    warmup: float = 0.3
    concurrencies: tuple[int, ...] = (1, 16, 64)
    chunks: int = 16
    memory_requests: int = 100_000
    memory_step: int = 10_000
    sessions: int = 10_000
    session_rounds: int = 2
    rpm: int = 1200
    rate_windows: int = 5
    rate_window: float = 5.0


FULL = Budget()
QUICK = Budget(
    runs=2,
    duration=1.0,
    warmup=0.2,
    memory_requests=4000,
    memory_step=1000,
    sessions=500,
    rate_windows=2,
    rate_window=2.0,
)


def cores() -> int:
    return len(os.sched_getaffinity(0))


METHOD = """\
The upstream is `bench/upstream.py`: a raw asyncio HTTP/1.1 server in its own process that
answers every chat completion with a fixed small body, or a fixed {chunks}-chunk SSE stream. The
load generator is `bench/loadgen.py`: closed-loop keep-alive clients on raw asyncio connections,
in their own process. The baseline is that same load generator calling the upstream directly;
the figure is the load generator calling `corral runtime` (one worker: the real command; N
workers: `bench/workers.py`, N processes sharing the port through SO_REUSEPORT, each building
the app as `corral runtime` does) in front of the same upstream. Runs of {duration:g} s after
{warmup:g} s of warm-up, {runs} per figure, baseline and runtime alternating. The runtime logs
one JSON access line per request to a file, as in production. Client, upstream and runtime
share the machine's {cores} cores."""


def run(budget: Budget, workdir: Path) -> figures.SuiteResult:
    """Every runtime scenario; the figures, notes and raw summaries."""
    result = figures.SuiteResult("runtime")
    result.method = METHOD.format(
        chunks=budget.chunks,
        duration=budget.duration,
        warmup=budget.warmup,
        runs=budget.runs,
        cores=cores(),
    ).replace("\n", " ")
    workers = sorted({1, cores()})
    for count in workers:
        _speed(budget, workdir, count, result)
    _memory(budget, workdir, result)
    _sessions(budget, workdir, result)
    _rate_limit(budget, workdir, result)
    return result


@dataclass
class _Pair:
    """Paired runs at one concurrency: the baseline's summaries and the runtime's (and the
    empty app's, when it was measured too)."""

    direct: list[dict[str, Any]]
    via: list[dict[str, Any]]
    empty: list[dict[str, Any]] = field(default_factory=list)

    def series(self, pick: Callable[[dict[str, Any]], float]) -> tuple[list[float], list[float]]:
        return [pick(r) for r in self.via], [pick(r) for r in self.direct]


def _measure(
    budget: Budget,
    up: runtimes.Served,
    rt: runtimes.Served,
    clients: int,
    *,
    stream: bool,
    empty: runtimes.Served | None = None,
) -> _Pair:
    pair = _Pair([], [])
    targets = [(up, upstream.MODEL, pair.direct), (rt, runtimes.AGENT, pair.via)]
    if empty is not None:
        targets.append((empty, upstream.MODEL, pair.empty))
    for _ in range(budget.runs):
        for served, model, into in targets:
            cpu = served.cpu()
            summary = runtimes.drive(
                served.chat_url,
                clients,
                model=model,
                stream=stream,
                duration=budget.duration,
                warmup=budget.warmup,
            )
            _require_only(summary, "200", served.chat_url)
            summary["server_cpu_per_request_ms"] = (
                (served.cpu() - cpu) / summary["completed_total"] * 1000
            )
            into.append(summary)
    return pair


def _require_only(summary: dict[str, Any], status: str, url: str) -> None:
    if set(summary["statuses"]) != {status}:
        raise procs.BenchError(f"{url} answered {summary['statuses']}, expected only {status}")


def _speed(budget: Budget, workdir: Path, workers: int, result: figures.SuiteResult) -> None:
    section = f"Runtime, {workers} worker{'s' if workers > 1 else ''}"
    one = workers == 1
    with contextlib.ExitStack() as stack:
        up = stack.enter_context(runtimes.upstream(workdir, budget.chunks))
        rt = stack.enter_context(
            runtimes.runtime(workdir, f"runtime-{workers}w", up.port, workers=workers)
        )
        empty = stack.enter_context(runtimes.empty_app(workdir)) if one else None
        runtimes.drive(rt.chat_url, 16, model=runtimes.AGENT, duration=1.0, warmup=0.5)
        raw: dict[str, Any] = {}
        for clients in budget.concurrencies:
            concurrent = clients >= 16
            pair = _measure(
                budget, up, rt, clients, stream=False, empty=empty if concurrent else None
            )
            raw[f"clients_{clients}"] = {
                "direct": pair.direct,
                "runtime": pair.via,
                "empty_app": pair.empty,
            }
            target = figures.at_least_ratio(0.5) if one and concurrent else None
            result.figures.append(
                figures.compared(
                    section,
                    f"throughput, {clients} client{'s' if clients > 1 else ''}",
                    "req/s",
                    *pair.series(lambda r: r["throughput"]),
                    DIRECT,
                    target=target,
                    with_added=False,
                )
            )
            if pair.empty:
                _ceiling_figures(section, pair, clients, result)
            if clients == 1:
                _latency_figures(section, pair, one, result)
            if clients == max(budget.concurrencies):
                _cpu_figure(section, pair, clients, result)
                result.notes.append(_bottleneck_note(section, pair, clients))
        stream = _measure(budget, up, rt, 1, stream=True)
        raw["stream_1"] = {"direct": stream.direct, "runtime": stream.via}
        _ttft_figures(section, stream, budget.chunks, one, result)
        result.raw[f"speed_{workers}w"] = raw


def _ceiling_figures(section: str, pair: _Pair, clients: int, result: figures.SuiteResult) -> None:
    """The empty app against the direct baseline (how far the server stack alone falls
    short), and the runtime against the empty app (what the runtime's work costs on top)."""
    empty = _throughputs(pair.empty)
    result.figures.append(
        figures.compared(
            section,
            f"throughput, {clients} clients, an empty ASGI app on uvicorn (the stack's ceiling)",
            "req/s",
            empty,
            _throughputs(pair.direct),
            DIRECT,
            with_added=False,
        )
    )
    result.figures.append(
        figures.compared(
            section,
            f"throughput, {clients} clients, against the empty app",
            "req/s",
            _throughputs(pair.via),
            empty,
            "an empty ASGI app on uvicorn",
            with_added=False,
        )
    )


def _throughputs(runs: list[dict[str, Any]]) -> list[float]:
    return [float(r["throughput"]) for r in runs]


def _pick(group: str, key: str) -> Callable[[dict[str, Any]], float]:
    def pick(summary: dict[str, Any]) -> float:
        return float(summary[group][key])

    return pick


def _latency_figures(section: str, pair: _Pair, one: bool, result: figures.SuiteResult) -> None:
    for quantile, limit in (("p50", 1.0), ("p99", 3.0)):
        result.figures.append(
            figures.compared(
                section,
                f"latency {quantile}, 1 client",
                "ms",
                *pair.series(_pick("latency_ms", quantile)),
                DIRECT,
                target=figures.at_most_added(limit, "ms") if one else None,
            )
        )


def _ttft_figures(
    section: str, pair: _Pair, chunks: int, one: bool, result: figures.SuiteResult
) -> None:
    for quantile in ("p50", "p99"):
        result.figures.append(
            figures.compared(
                section,
                f"time to first token {quantile}, 1 client ({chunks}-chunk stream)",
                "ms",
                *pair.series(_pick("ttft_ms", quantile)),
                DIRECT,
                target=figures.at_most_added(2.0, "ms") if one and quantile == "p50" else None,
            )
        )


def _cpu_figure(section: str, pair: _Pair, clients: int, result: figures.SuiteResult) -> None:
    result.figures.append(
        figures.compared(
            section,
            f"CPU per request, {clients} clients",
            "ms",
            *pair.series(lambda r: r["server_cpu_per_request_ms"]),
            "the upstream's own CPU per request",
        )
    )


def _bottleneck_note(section: str, pair: _Pair, clients: int) -> str:
    def busy(runs: list[dict[str, Any]]) -> float:
        spent = [r["cpu_s"] / r["elapsed_s"] for r in runs]
        return stats.Spread.of(spent).median

    return (
        f"{section}, {clients} clients: the load generator used {busy(pair.via):.0%} of a core"
        f" driving the runtime and {busy(pair.direct):.0%} driving the upstream directly"
        " (median of the runs): it is not the bottleneck while well below 100%."
    )


def _memory(budget: Budget, workdir: Path, result: figures.SuiteResult) -> None:
    with (
        runtimes.upstream(workdir, budget.chunks) as up,
        runtimes.runtime(workdir, "runtime-memory", up.port) as rt,
    ):
        runtimes.drive(rt.chat_url, 64, model=runtimes.AGENT, requests=budget.memory_step // 10)
        samples: list[tuple[int, int]] = []
        sent = 0
        while sent < budget.memory_requests:
            summary = runtimes.drive(
                rt.chat_url, 64, model=runtimes.AGENT, requests=budget.memory_step
            )
            _require_only(summary, "200", rt.chat_url)
            sent += budget.memory_step
            samples.append((sent, rt.rss()))
    half = next(rss for n, rss in samples if n >= budget.memory_requests // 2)
    later = [rss / MIB for n, rss in samples if n > budget.memory_requests // 2]
    result.figures.append(
        Figure(
            section="Runtime memory, 1 worker",
            name=f"RSS after {budget.memory_requests:,} requests",
            unit="MiB",
            value=stats.Spread.of([samples[-1][1] / MIB]),
            baseline=stats.Spread.of([half / MIB]),
            baseline_name=f"RSS after {budget.memory_requests // 2:,} requests",
            ratio=stats.Spread.of([samples[-1][1] / half]),
            added=stats.Spread.of([(samples[-1][1] - half) / MIB]),
            target=_growth_target(samples[-1][1] / half, "growth < 5%"),
            note="one long run, RSS sampled every "
            f"{budget.memory_step:,} requests; after the halfway mark it ranged "
            f"{min(later):.1f}-{max(later):.1f} MiB",
        )
    )
    result.raw["memory_requests"] = [{"requests": n, "rss_bytes": rss} for n, rss in samples]


def _growth_target(ratio: float, text: str) -> figures.Target:
    return figures.Target(text, ratio < 1.05, f"{ratio - 1:+.1%} RSS")


SESSIONS_GAUGE = re.compile(r"^corral_sessions (\S+)$", re.MULTILINE)


def _held_sessions(served: runtimes.Served) -> int:
    url = f"http://127.0.0.1:{served.port}/metrics"
    with urllib.request.urlopen(url, timeout=10) as answer:
        found = SESSIONS_GAUGE.search(answer.read().decode())
    if found is None:
        raise procs.BenchError(f"{url} shows no corral_sessions gauge")
    return int(float(found.group(1)))


def _sessions(budget: Budget, workdir: Path, result: figures.SuiteResult) -> None:
    memory = {"enabled": True, "maxSessions": budget.sessions, "ttlSeconds": 3600}
    with (
        runtimes.upstream(workdir, budget.chunks) as up,
        runtimes.runtime(workdir, "runtime-sessions", up.port, memory=memory) as rt,
    ):
        runtimes.drive(rt.chat_url, 16, model=runtimes.AGENT, requests=1000)
        before = rt.rss()
        after: list[int] = []
        for round_ in range(budget.session_rounds):
            summary = runtimes.drive(
                rt.chat_url,
                16,
                model=runtimes.AGENT,
                requests=budget.sessions,
                session_prefix=f"r{round_}",
            )
            _require_only(summary, "200", rt.chat_url)
            after.append(rt.rss())
        held = _held_sessions(rt)
    if held != budget.sessions:
        raise procs.BenchError(f"the runtime holds {held} sessions, expected {budget.sessions}")
    total = budget.sessions * budget.session_rounds
    section = "Runtime memory, 1 worker"
    result.figures.append(
        Figure(
            section=section,
            name=f"RSS holding {budget.sessions:,} sessions",
            unit="MiB",
            value=stats.Spread.of([after[0] / MIB]),
            baseline=stats.Spread.of([before / MIB]),
            baseline_name="RSS before any session",
            ratio=stats.Spread.of([after[0] / before]),
            added=stats.Spread.of([(after[0] - before) / MIB]),
            note=f"about {(after[0] - before) / budget.sessions / 1024:.1f} KiB per session"
            " (one user message and one answer each)",
        )
    )
    result.figures.append(
        Figure(
            section=section,
            name=f"RSS after {total:,} sessions ({budget.sessions:,} held)",
            unit="MiB",
            value=stats.Spread.of([after[-1] / MIB]),
            baseline=stats.Spread.of([after[0] / MIB]),
            baseline_name=f"RSS after the first {budget.sessions:,}",
            ratio=stats.Spread.of([after[-1] / after[0]]),
            added=stats.Spread.of([(after[-1] - after[0]) / MIB]),
            target=_growth_target(after[-1] / after[0], "flat (growth < 5%)"),
            note="older sessions are evicted at maxSessions; one run",
        )
    )
    result.raw["memory_sessions"] = {"before": before, "after_rounds": after, "held": held}


def _rate_limit(budget: Budget, workdir: Path, result: figures.SuiteResult) -> None:
    limit = {"requestsPerMinute": budget.rpm}
    with (
        runtimes.upstream(workdir, budget.chunks) as up,
        runtimes.runtime(workdir, "runtime-ratelimit", up.port, rateLimit=limit) as rt,
    ):
        drained = runtimes.drive(
            rt.chat_url, 64, model=runtimes.AGENT, requests=budget.rpm * 10, until_status=429
        )
        summary = runtimes.drive(
            rt.chat_url,
            64,
            model=runtimes.AGENT,
            duration=budget.rate_window * budget.rate_windows,
            warmup=RATE_SETTLE,
            windows=budget.rate_windows,
        )
    if set(summary["statuses"]) != {"200", "429"}:
        raise procs.BenchError(
            f"64 clients over {budget.rpm} requests/minute should see 200s and 429s,"
            f" saw {summary['statuses']}"
        )
    allowed = budget.rpm / 60 * budget.rate_window
    admitted = [float(n) for n in summary["windows_ok"]]
    result.figures.append(
        Figure(
            section="Runtime rate limiter, 1 worker",
            name=f"admitted per {budget.rate_window:g} s window, 64 clients, {budget.rpm} rpm",
            unit="requests",
            value=stats.Spread.of(admitted),
            baseline=stats.Spread.of([allowed] * len(admitted)),
            baseline_name="allowed by the limit",
            ratio=stats.Spread.of([a / allowed for a in admitted]),
            added=stats.Spread.of([a - allowed for a in admitted]),
            note=f"measured once {drained['completed_total']:,} requests had emptied the bucket"
            f" and {RATE_SETTLE:g} s more had passed; {summary['statuses']['429']:,} answers in"
            " the windows were 429",
        )
    )
    result.raw["rate_limit"] = summary
