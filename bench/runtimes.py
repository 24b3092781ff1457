"""The processes of the runtime benchmark and how to drive them.

`upstream(...)` starts the fake OpenAI upstream (`bench.upstream`) in its own process;
`runtime(...)` writes a runtime config pointing at it and starts `corral runtime` (one worker:
the real command) or `bench.workers` (N uvicorn workers over the same app factory);
`empty_app(...)` starts `bench.emptyapp`, the same server stack doing no work; `drive(...)`
runs the load generator (`bench.loadgen`) in its own process and returns its JSON summary.
Called by `runtime_suite`; process, file and loopback network I/O.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import procs

REPO = Path(__file__).resolve().parent.parent
AGENT = "bench"
READY_TIMEOUT = 60.0


def child_env(**extra: str) -> dict[str, str]:
    """The environment of every benchmark process: this one's, with the repo importable."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    env.update(extra)
    return env


@dataclass(frozen=True)
class Served:
    """A started server: its process and where it listens."""

    proc: procs.Proc
    port: int
    workers: int = 1

    @property
    def chat_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1/chat/completions"

    def cpu(self) -> float:
        return self.proc.cpu(tree=self.workers > 1)

    def rss(self) -> int:
        return self.proc.rss(tree=self.workers > 1)


@contextmanager
def upstream(workdir: Path, chunks: int) -> Iterator[Served]:
    port = procs.free_port()
    argv = [sys.executable, "-m", "bench.upstream", "--port", str(port), "--chunks", str(chunks)]
    with procs.Proc(argv, workdir / "upstream.log", env=child_env(), port=port) as proc:
        yield Served(proc, port)


@contextmanager
def empty_app(workdir: Path) -> Iterator[Served]:
    """`bench.emptyapp`: the runtime's server stack doing no work (a throughput ceiling)."""
    port = procs.free_port()
    argv = [sys.executable, "-m", "bench.emptyapp", "--port", str(port)]
    with procs.Proc(argv, workdir / "emptyapp.log", env=child_env(), port=port) as proc:
        served = Served(proc, port)
        wait_ready(served, workdir / "emptyapp.log", None)
        yield served


def runtime_config(upstream_port: int, **fields: Any) -> dict[str, Any]:
    """The runtime config document (wire names) of the benchmark agent over the upstream."""
    return {
        "agent": AGENT,
        "namespace": "bench",
        "systemPrompt": "You are a concise support engineer.",
        "models": [
            {
                "provider": "openai",
                "name": "fake-model",
                "baseURL": f"http://127.0.0.1:{upstream_port}/v1",
            }
        ],
        **fields,
    }


@contextmanager
def runtime(
    workdir: Path, name: str, upstream_port: int, *, workers: int = 1, **fields: Any
) -> Iterator[Served]:
    """`corral runtime` (workers == 1) or `bench.workers` over a fresh config; logs go to
    workdir/NAME.log (the runtime's JSON access log included, as in production)."""
    config = workdir / f"{name}.json"
    config.write_text(json.dumps(runtime_config(upstream_port, **fields)))
    port = procs.free_port()
    if workers == 1:
        argv = [sys.executable, "-m", "corral.cli", "runtime", "--config", str(config)]
        argv += ["--host", "127.0.0.1", "--port", str(port)]
    ready = workdir / f"{name}.ready"
    shutil.rmtree(ready, ignore_errors=True)
    if workers > 1:
        argv = [sys.executable, "-m", "bench.workers", "--config", str(config)]
        argv += ["--port", str(port), "--workers", str(workers), "--ready-dir", str(ready)]
    log = workdir / f"{name}.log"
    with procs.Proc(argv, log, env=child_env(), port=port) as proc:
        served = Served(proc, port, workers)
        wait_ready(served, log, ready if workers > 1 else None)
        yield served


def wait_ready(served: Served, log: Path, ready_dir: Path | None) -> None:
    """Until GET /readyz answers 200 and, for N workers, each has marked itself ready
    (they bind the port before their apps have started)."""
    deadline = time.monotonic() + READY_TIMEOUT
    url = f"http://127.0.0.1:{served.port}/readyz"
    while True:
        started = ready_dir is None or (
            ready_dir.is_dir() and len(list(ready_dir.iterdir())) >= served.workers
        )
        try:
            with urllib.request.urlopen(url, timeout=5) as answer:
                if answer.status == 200 and started:
                    return
        except (urllib.error.URLError, OSError):
            pass
        if time.monotonic() > deadline:
            raise procs.BenchError(f"{url} was not ready in {READY_TIMEOUT:.0f}s; see {log}")
        time.sleep(0.1)


def drive(
    url: str,
    clients: int,
    *,
    model: str,
    stream: bool = False,
    duration: float = 0.0,
    warmup: float = 0.0,
    requests: int = 0,
    windows: int = 1,
    session_prefix: str | None = None,
    until_status: int = 0,
    also_ports: tuple[int, ...] = (),
) -> dict[str, Any]:
    """One load-generator run in its own process; its summary (see bench.loadgen). Clients
    are spread over `url` and the same path on each of `also_ports` (replicas)."""
    argv = [sys.executable, "-m", "bench.loadgen", "--url", url, "--clients", str(clients)]
    for port in also_ports:
        argv += ["--also-port", str(port)]
    argv += ["--model", model, "--windows", str(windows)]
    if stream:
        argv.append("--stream")
    if duration:
        argv += ["--duration", str(duration), "--warmup", str(warmup)]
    else:
        argv += ["--requests", str(requests)]
    if session_prefix is not None:
        argv += ["--session-prefix", session_prefix]
    if until_status:
        argv += ["--until-status", str(until_status)]
    limit = (duration + warmup) * 4 + requests / 50 + 120
    done = subprocess.run(
        argv, capture_output=True, text=True, env=child_env(), timeout=limit, check=False
    )
    if done.returncode != 0:
        raise procs.BenchError(f"the load generator failed ({done.returncode}):\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout)
    if result["errors"]:
        raise procs.BenchError(f"{result['errors']} connections failed driving {url}")
    return result
