"""Where the runtime spends its CPU per request: cProfile over a served runtime under load.

Builds the app as `corral runtime` does, serves it under uvicorn in this process with cProfile
on (started once the app is up), drives it with the load generator in its own process against
the fake upstream, then prints CPU per request and the own time per component (our code,
FastAPI/Starlette, uvicorn/h11, the openai SDK, httpx/httpcore, pydantic, logging, ...) and the
hottest functions. cProfile slows everything down by a similar factor, so read the shares, not
the absolute times. Used by hand to find hot spots (see PROFILE.md):
`python -m bench.profiling [--clients 16] [--seconds 10] [--stream]`; loopback I/O.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import tempfile
import threading
import time
from collections.abc import Iterable
from pathlib import Path

import uvicorn

from bench import procs, runtimes
from corral.api.runtimeconfig import RuntimeConfig
from corral.runtime import app as appmod
from corral.runtime import logging as jsonlog
from corral.runtime import settings

# Path fragments that name a component, tried in order; the first match wins.
COMPONENTS = (
    ("corral/runtime", "corral.runtime"),
    ("openai/", "openai SDK"),
    ("httpx", "httpx"),
    ("httpcore", "httpcore"),
    ("anyio", "anyio"),
    ("h11", "h11 (HTTP parsing)"),
    ("uvicorn", "uvicorn"),
    ("fastapi", "FastAPI"),
    ("starlette", "Starlette"),
    ("pydantic", "pydantic"),
    ("prometheus_client", "prometheus_client"),
    ("logging", "logging"),
    ("json", "json"),
    ("asyncio", "asyncio"),
    ("typing", "typing"),
)


def component(filename: str) -> str:
    for fragment, name in COMPONENTS:
        if fragment in filename:
            return name
    return "built-ins and other" if filename.startswith("~") else "other Python"


def shares(stats: pstats.Stats) -> list[tuple[str, float]]:
    """Own time per component, largest first (the event loop's idle wait left out)."""
    table: dict[str, float] = {}
    raw: dict[tuple[str, int, str], tuple[int, int, float, float, object]] = stats.stats  # type: ignore[attr-defined]
    for (filename, _, function), (_, _, own, _, _) in raw.items():
        if "poll" in function and "epoll" in function:
            continue
        name = component(filename)
        table[name] = table.get(name, 0.0) + own
    return sorted(table.items(), key=lambda kv: -kv[1])


class _Profiled(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, profile: cProfile.Profile) -> None:
        super().__init__(config)
        self._profile = profile

    async def startup(self, sockets: list[object] | None = None) -> None:  # type: ignore[override]
        await super().startup(sockets=sockets)  # type: ignore[arg-type]
        self._profile.enable()

    async def shutdown(self, sockets: list[object] | None = None) -> None:  # type: ignore[override]
        self._profile.disable()
        await super().shutdown(sockets=sockets)  # type: ignore[arg-type]


def profile(clients: int, seconds: float, stream: bool, workdir: Path) -> None:
    with runtimes.upstream(workdir, 16) as up:
        document = runtimes.runtime_config(up.port)
        conf = settings.load()
        jsonlog.configure("WARNING")
        app = appmod.create_app(RuntimeConfig.model_validate(document), conf, os.environ)
        port = procs.free_port()
        prof = cProfile.Profile()
        server = _Profiled(
            uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="on"),
            prof,
        )
        thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.05)
        summary = runtimes.drive(
            f"http://127.0.0.1:{port}/v1/chat/completions",
            clients,
            model=runtimes.AGENT,
            stream=stream,
            duration=seconds,
        )
        server.should_exit = True
        thread.join(timeout=30)
    stats = pstats.Stats(prof)
    count = summary["completed_total"]
    total = sum(own for _, own in shares(stats))
    print(f"{count} requests, {summary['throughput']:.0f}/s under cProfile")
    print(f"profiled CPU per request: {total / count * 1000:.2f} ms")
    _print_rows(((name, own / count * 1000, own / total) for name, own in shares(stats)))
    stats.sort_stats("tottime").print_stats(25)


def _print_rows(rows: Iterable[tuple[str, float, float]]) -> None:
    for name, per_request_ms, share in rows:
        print(f"  {name:<24} {per_request_ms:7.3f} ms/request  {share:6.1%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--stream", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="corral-profile-") as workdir:
        profile(args.clients, args.seconds, args.stream, Path(workdir))


if __name__ == "__main__":
    main()
