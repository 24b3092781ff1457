"""The MCP benchmark: what the runtime adds to one MCP tool call.

The server is `bench/mcpserver.py` (FastMCP, streamable HTTP) in its own process. The
baseline calls its tool with the official SDK directly: one `ClientSession`, `call_tool` in a
loop. The figure makes the same call the way the agent loop does, through the runtime's
`ToolRunner` over `mcptools.McpTools` (the catalog lookup, argument parsing and JSON Schema
validation, the shared session, the result's conversion and size cap, the metrics): same
process, same event loop, same server, runs alternating. Called by `bench.__main__`
(`python -m bench --suite mcp` runs it alone); starts one process.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openai
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client

from bench import figures, procs, stats
from corral.api.runtimeconfig import McpServerConfig
from corral.runtime import callchain, httptools, mcptools, metrics, tools
from corral.runtime.providers import base

HERE = Path(__file__).resolve().parent
SECTION = "MCP tool call, 1 caller"
DIRECT = "the SDK's call_tool directly"
SECTION_INNER = "MCP tool call, 1 caller, against the SDK call inside it"
INNER = "the SDK call inside the same calls"


@dataclass(frozen=True)
class Budget:
    runs: int = 7
    calls: int = 400
    warmup: int = 50


FULL = Budget()
QUICK = Budget(runs=2, calls=100, warmup=10)

METHOD = """\
The MCP server is `bench/mcpserver.py` (FastMCP from the official `mcp` SDK, streamable HTTP)
in its own process, answering one small read-only tool. The baseline calls the tool with the
SDK directly (one ClientSession, sequential `call_tool`); the figure is the same call through
the runtime's tool runner (`ToolRunner` over `mcptools.McpTools`: lookup, argument validation,
the shared session, result conversion and cap, metrics), in the same process and event loop,
one call at a time. {runs} runs of {calls} calls after {warmup} unmeasured, baseline and
runtime alternating; per-call latency percentiles per run."""


def run(budget: Budget, workdir: Path) -> figures.SuiteResult:
    result = figures.SuiteResult("mcp")
    result.method = METHOD.format(**vars(budget)).replace("\n", " ")
    port = procs.free_port()
    log = workdir / "mcpserver.log"
    argv = [sys.executable, str(HERE / "mcpserver.py"), str(port)]
    with procs.Proc(argv, log, port=port):
        direct, via = asyncio.run(_measure(budget, f"http://127.0.0.1:{port}/mcp"))
    for name, key in (("latency p50", "p50"), ("latency p99", "p99"), ("latency mean", "mean")):
        result.figures.append(
            figures.compared(
                SECTION,
                name,
                "ms",
                [r[key] for r in via],
                [r[key] for r in direct],
                DIRECT,
            )
        )
    for name, key in (("latency p50", "p50"), ("latency mean", "mean")):
        result.figures.append(
            figures.compared(
                SECTION_INNER,
                name,
                "ms",
                [r[key] for r in via],
                [r[f"inner_{key}"] for r in via],
                INNER,
            )
        )
    result.notes.append(
        "The second table compares each call through the runtime with the SDK call it made"
        " inside (timed around the SDK's ClientSession.call_tool): the same calls, so the"
        " server's and the machine's noise cancel and *added* is the runtime's own time per"
        " call (its session layer, lookup, validation, result handling and metrics)."
    )
    result.raw = {"direct": direct, "runtime": via}
    return result


async def _measure(
    budget: Budget, url: str
) -> tuple[list[dict[str, float]], list[dict[str, float]]]:
    config = McpServerConfig(name="bench", url=url, timeout_seconds=30)
    recorder = metrics.Metrics()
    catalog = mcptools.McpTools([config], {}, recorder)
    await catalog.start(30)
    name = mcptools.function_name("bench", "lookup_order")
    if catalog.entry(name) is None:
        raise procs.BenchError(f"the runtime did not list {name} from {url}")
    inner: list[float] = []
    http = openai.DefaultAioHttpClient()
    runner = tools.ToolRunner(httptools.ToolSet([], {}), http, recorder.tool_call, extra=catalog)
    chain = callchain.Chain(before=(), me="bench/agent", max_depth=3)
    arguments = json.dumps({"order_id": "42"})

    async def through_runtime(index: int) -> None:
        call = base.ToolCall(id=f"c{index}", name=name, arguments=arguments)
        (answer,) = await runner.run([call], chain)
        if answer.outcome != "ok":
            raise procs.BenchError(f"the runtime's call failed: {answer.content}")

    direct: list[dict[str, float]] = []
    via: list[dict[str, float]] = []
    try:
        async with (
            streamable_http_client(url) as (read, write, _),
            ClientSession(read, write) as session,
        ):
            await session.initialize()

            async def with_sdk(index: int) -> None:
                answer = await session.call_tool("lookup_order", {"order_id": "42"})
                if answer.isError:
                    raise procs.BenchError("the SDK's call failed")

            for _ in range(budget.runs):
                direct.append(await _series(with_sdk, budget))
                inner.clear()
                with _timing_sdk_calls(inner):
                    series = await _series(through_runtime, budget)
                measured = inner[budget.warmup :]
                series["inner_p50"] = stats.percentile(measured, 50)
                series["inner_mean"] = sum(measured) / len(measured)
                via.append(series)
    finally:
        await catalog.close()
        await http.aclose()
    return direct, via


async def _series(call: Any, budget: Budget) -> dict[str, float]:
    for index in range(budget.warmup):
        await call(index)
    times: list[float] = []
    for index in range(budget.calls):
        started = time.perf_counter()
        await call(index)
        times.append((time.perf_counter() - started) * 1000)
    return {
        "p50": stats.percentile(times, 50),
        "p99": stats.percentile(times, 99),
        "mean": sum(times) / len(times),
    }


@contextlib.contextmanager
def _timing_sdk_calls(into: list[float]) -> Iterator[None]:
    """Time every `ClientSession.call_tool` (the SDK's own call) made meanwhile, in ms."""
    original = ClientSession.call_tool

    async def timed(self: ClientSession, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return await original(self, *args, **kwargs)
        finally:
            into.append((time.perf_counter() - started) * 1000)

    ClientSession.call_tool = timed  # type: ignore[method-assign]
    try:
        yield
    finally:
        ClientSession.call_tool = original  # type: ignore[method-assign]
