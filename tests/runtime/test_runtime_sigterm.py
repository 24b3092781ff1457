"""SIGTERM on the real `corral runtime` process: drain, refuse politely, finish streams, exit 0."""

from __future__ import annotations

import json
import logging
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import openai
import pytest
from runtime_harness import AGENT, Running, agent_config

from corral.runtime import main
from fakes import scripts
from fakes.openai_server import FakeOpenAI

START_TIMEOUT = 30.0
EXIT_TIMEOUT = 30.0
WORDS = [f"word{n} " for n in range(30)]


class Process:
    """`corral runtime` in a subprocess on a free loopback port."""

    def __init__(self, config_path: Path, env: dict[str, str] | None = None) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        command = [sys.executable, "-m", "corral.cli", "runtime", "--config", str(config_path)]
        command += ["--host", "127.0.0.1", "--port", str(self.port)]
        self.proc = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"runtime exited early: {self.proc.stderr.read()}")  # type: ignore[union-attr]
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"runtime not ready on port {self.port} within {START_TIMEOUT}s")

    def wait_exit(self) -> int:
        try:
            return self.proc.wait(timeout=EXIT_TIMEOUT)
        except subprocess.TimeoutExpired as err:
            raise AssertionError(f"runtime still running {EXIT_TIMEOUT}s after SIGTERM") from err

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=EXIT_TIMEOUT)


def stream_started(runtime: Process) -> tuple[list[bytes], threading.Thread]:
    """A streamed chat read on a thread into the returned list, once its first bytes came."""
    received: list[bytes] = []
    first_chunk = threading.Event()

    def stream() -> None:
        body = {"model": AGENT, "messages": [{"role": "user", "content": "go"}], "stream": True}
        with httpx.stream("POST", f"{runtime.url}/v1/chat/completions", json=body, timeout=30) as r:
            for chunk in r.iter_bytes():
                received.append(chunk)
                first_chunk.set()

    reader = threading.Thread(target=stream)
    reader.start()
    assert first_chunk.wait(START_TIMEOUT), "the stream never started"
    return received, reader


@pytest.fixture
def slow_upstream() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(scripts.text("".join(WORDS), chunk_delay=0.05)) as fake:
        yield fake


@pytest.fixture
def runtime(tmp_path: Path, slow_upstream: FakeOpenAI) -> Iterator[Process]:
    config = agent_config(slow_upstream.base_url, server={"drainTimeoutSeconds": 20})
    path = tmp_path / "runtime.json"
    path.write_text(config.to_json())
    process = Process(path)
    process.wait_ready()
    yield process
    process.stop()


def test_sigterm_during_a_stream_loses_no_bytes_and_exits_zero(
    runtime: Process, slow_upstream: FakeOpenAI
) -> None:
    received, reader = stream_started(runtime)

    runtime.proc.send_signal(signal.SIGTERM)

    assert _eventually(lambda: httpx.get(f"{runtime.url}/readyz").status_code == 503)
    late = openai.OpenAI(base_url=f"{runtime.url}/v1", api_key="x", max_retries=0)
    with pytest.raises(openai.InternalServerError) as caught:
        late.chat.completions.create(model=AGENT, messages=[{"role": "user", "content": "hi"}])
    assert caught.value.status_code == 503
    assert caught.value.code == "shutting_down"

    reader.join(timeout=EXIT_TIMEOUT)
    assert runtime.wait_exit() == 0
    events = b"".join(received).decode().split("\n\n")
    assert events[-2:] == ["data: [DONE]", ""]
    chunks = [json.loads(e.removeprefix("data: ")) for e in events[:-2]]
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)
    assert text == "".join(WORDS)
    assert [c["choices"][0]["finish_reason"] for c in chunks][-1] == "stop"


def test_sigterm_when_idle_exits_zero(runtime: Process) -> None:
    runtime.proc.send_signal(signal.SIGTERM)

    assert runtime.wait_exit() == 0
    logs = [json.loads(line) for line in runtime.proc.stderr.read().splitlines()]  # type: ignore[union-attr]
    assert any(entry["msg"].startswith("drained") for entry in logs)


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """main.run() installs the JSON handler on the root logger; put pytest's back after."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.mark.usefixtures("restore_logging")
def test_an_invalid_config_returns_2_with_a_json_log_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "runtime.json"
    path.write_text(json.dumps({"agent": "a", "namespace": "n", "models": []}))

    assert main.run(path, "127.0.0.1", 0) == 2

    (line,) = capsys.readouterr().err.splitlines()
    entry = json.loads(line)
    assert entry["level"] == "error"
    assert "models" in entry["msg"]


HEADER_TOOL = {
    "name": "t",
    "description": "d",
    "parameters": {"type": "object"},
    "http": {"url": "http://127.0.0.1:9/", "headerEnvs": {"x-k": "CORRAL_TEST_TOOL"}},
}
UNSET_SECRETS = {
    "auth keys": (("http://127.0.0.1:9/v1",), {"auth": {"apiKeysEnv": "CORRAL_TEST_KEYS"}}),
    "tool header": (("http://127.0.0.1:9/v1",), {"tools": [HEADER_TOOL]}),
    "model key": ((("gemini", "http://127.0.0.1:9/"),), {}),
}
MISSING = {
    "auth keys": "CORRAL_TEST_KEYS",
    "tool header": "CORRAL_TEST_TOOL",
    "model key": "GEMINI_KEY",
}


@pytest.mark.usefixtures("restore_logging")
@pytest.mark.parametrize("case", sorted(UNSET_SECRETS))
def test_secrets_missing_from_the_environment_return_2_naming_the_variable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str
) -> None:
    upstreams, fields = UNSET_SECRETS[case]
    path = tmp_path / "runtime.json"
    path.write_text(agent_config(*upstreams, **fields).to_json())

    assert main.run(path, "127.0.0.1", 0) == 2

    assert MISSING[case] in capsys.readouterr().err


def _eventually(check: object, limit: float = 10.0) -> bool:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return True
        time.sleep(0.02)
    return False


def test_while_draining_api_requests_are_refused_politely_but_probes_answer(
    serve: Callable[..., Running], upstream: FakeOpenAI
) -> None:
    agent = serve(agent_config(upstream.base_url))
    agent.app.state.drain.begin()

    refused = agent.post("/v1/chat/completions", json={"model": AGENT, "messages": []})

    assert refused.status_code == 503
    assert refused.headers["retry-after"] == "1"
    assert refused.headers["connection"] == "close"
    assert refused.json()["error"]["code"] == "shutting_down"
    assert agent.get("/readyz").status_code == 503
    assert agent.get("/healthz").status_code == 200
    assert agent.get("/metrics").status_code == 200
    assert upstream.requests == []
