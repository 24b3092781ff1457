"""End to end: `corral runtime` in front of the real llama-cpp-python server (Gemma 3 270M).

The model is a 270M *base* model: these tests prove the path (our runtime speaking the OpenAI
API to a real third-party OpenAI-compatible server, and the official SDK reading our answers),
so they check the shape of the answers, never their content.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import openai
import pytest

import llamaserver
from corral.api.runtimeconfig import RuntimeConfig

pytestmark = pytest.mark.e2e

AGENT = "gemma-agent"
START_TIMEOUT = 60.0
QUESTION = [{"role": "user", "content": "Say hello."}]


@pytest.fixture(scope="module")
def llama() -> Iterator[llamaserver.LlamaServer]:
    with llamaserver.LlamaServer() as server:
        yield server


@pytest.fixture(scope="module")
def runtime(
    llama: llamaserver.LlamaServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """`corral runtime --config` over the llama server; yields the runtime's /v1 base URL."""
    config = RuntimeConfig.model_validate(
        {
            "agent": AGENT,
            "namespace": "default",
            "systemPrompt": "You are a helpful assistant.",
            "models": [
                {"provider": "openai", "name": llama.alias, "baseURL": llama.base_url,
                 "maxTokens": 16, "timeoutSeconds": 120}
            ],
        }
    )  # fmt: skip
    path = tmp_path_factory.mktemp("runtime") / "runtime.json"
    path.write_text(config.to_json())
    port = llamaserver.free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "corral.cli", "runtime", "--config", str(path),
         "--host", "127.0.0.1", "--port", str(port)],
        stderr=subprocess.PIPE,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(proc, url)
        yield f"{url}/v1"
    finally:
        proc.terminate()
        assert proc.wait(timeout=30) == 0


def test_a_whole_chat_through_the_runtime_to_llama_cpp(runtime: str) -> None:
    client = openai.OpenAI(base_url=runtime, api_key="unused", max_retries=0, timeout=120)

    answer = client.chat.completions.create(model=AGENT, messages=QUESTION, max_tokens=16)

    assert answer.model == AGENT
    (choice,) = answer.choices
    assert isinstance(choice.message.content, str)
    assert choice.finish_reason in ("stop", "length")
    assert answer.usage is not None
    assert answer.usage.prompt_tokens > 0
    assert 0 <= answer.usage.completion_tokens <= 16


def test_a_streamed_chat_through_the_runtime_to_llama_cpp(runtime: str) -> None:
    client = openai.OpenAI(base_url=runtime, api_key="unused", max_retries=0, timeout=120)

    chunks = list(
        client.chat.completions.create(
            model=AGENT,
            messages=QUESTION,
            max_tokens=16,
            stream=True,
            stream_options={"include_usage": True},
        )
    )

    assert chunks[0].choices[0].delta.role == "assistant"
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert [f for f in finishes if f is not None] in (["stop"], ["length"])
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.prompt_tokens > 0
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert isinstance(text, str)


def _wait_ready(proc: subprocess.Popen[bytes], url: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            stderr = proc.stderr.read().decode() if proc.stderr else ""
            raise AssertionError(f"corral runtime exited with {proc.returncode}: {stderr}")
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"corral runtime not ready at {url} within {START_TIMEOUT}s")
