"""Several `corral runtime` processes of one Agent, as a Deployment's replicas would be.

`Replicas(config, n, env)` writes the runtime config to a temp file and starts `n` real
`corral runtime` processes (hack/childproc) on free loopback ports, each waiting for /readyz;
`restart(i)` stops one with SIGTERM and starts it again on the same port. Their output is
kept for assertions on log lines. Used by the shared-state tests and the benchmark.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from types import TracebackType

import httpx
import openai

import childproc
from corral.api.runtimeconfig import RuntimeConfig

START_TIMEOUT = 30.0


class Replica:
    def __init__(self, config_path: Path, port: int, env: dict[str, str]) -> None:
        self.port = port
        argv = [sys.executable, "-m", "corral.cli", "runtime", "--config", str(config_path)]
        argv += ["--host", childproc.HOST, "--port", str(port)]
        self.child = childproc.Child(f"corral runtime :{port}", argv, env)
        self.child.wait_ready(self._ready, START_TIMEOUT, "ready")

    @property
    def base_url(self) -> str:
        return f"http://{childproc.HOST}:{self.port}/v1"

    def client(self, api_key: str = "unused", **options: object) -> openai.OpenAI:
        return openai.OpenAI(base_url=self.base_url, api_key=api_key, max_retries=0, **options)  # type: ignore[arg-type]

    def async_client(self, api_key: str = "unused", **options: object) -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(
            base_url=self.base_url,
            api_key=api_key,
            max_retries=0,
            **options,  # type: ignore[arg-type]
        )

    def metrics(self) -> str:
        return httpx.get(f"http://{childproc.HOST}:{self.port}/metrics", timeout=10).text

    def _ready(self) -> bool:
        try:
            answer = httpx.get(f"http://{childproc.HOST}:{self.port}/readyz", timeout=1)
        except httpx.HTTPError:
            return False
        return answer.status_code == 200


class Replicas:
    """`count` runtime processes serving `config`; a context manager."""

    def __init__(self, config: RuntimeConfig, count: int, env: dict[str, str]) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="corral-replicas-")
        self.config_path = Path(self._dir.name) / "runtime.json"
        self.config_path.write_text(config.to_json())
        self.env = env
        self.replicas: list[Replica] = []
        try:
            for _ in range(count):
                self.replicas.append(Replica(self.config_path, childproc.free_port(), env))
        except BaseException:
            self.close()
            raise

    def __getitem__(self, index: int) -> Replica:
        return self.replicas[index]

    def __len__(self) -> int:
        return len(self.replicas)

    def restart(self, index: int) -> Replica:
        old = self.replicas[index]
        old.child.close()
        self.replicas[index] = Replica(self.config_path, old.port, self.env)
        return self.replicas[index]

    def close(self) -> None:
        for replica in self.replicas:
            replica.child.close()
        self._dir.cleanup()

    def __enter__(self) -> Replicas:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
