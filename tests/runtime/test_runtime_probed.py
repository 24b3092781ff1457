"""Failures found by probing the runtime as an attacker would (loopback only), each held here.

Oversized and never-ending request heads and bodies, tool arguments that break URL building
or the JSON decoder, compressed tool answers, an upstream echoing its key, a client that
leaves, a stream outliving the drain, a request outliving its deadline, and `stream: "yes"`.
Every test drives the runtime over real HTTP on the bounded protocol `corral runtime` uses.
"""

from __future__ import annotations

import gzip
import json
import logging
import signal
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from runtime_harness import AGENT, Running, ToolReply, ToolServer, agent_config
from test_runtime_sigterm import Process, _eventually, stream_started

from corral.runtime.settings import Settings
from fakes import scripts
from fakes.openai_server import FakeOpenAI

USER = [{"role": "user", "content": "Where is order 7?"}]
READ_LIMIT = 15.0


def exchange(port: int, data: bytes) -> bytes:
    """Send `data` on a fresh connection and read until the server closes it."""
    with socket.create_connection(("127.0.0.1", port), timeout=READ_LIMIT) as sock:
        sock.sendall(data)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
        return received


def envelope(answer: bytes) -> dict[str, Any]:
    head, _, body = answer.partition(b"\r\n\r\n")
    assert b"connection: close" in head.lower(), head
    error: dict[str, Any] = json.loads(body)["error"]
    return error


def test_a_request_head_over_the_limit_gets_431_before_the_app_sees_it(agent: Running) -> None:
    big = b"x-padding: " + b"a" * (100 * 1024) + b"\r\n"
    head = b"POST /v1/chat/completions HTTP/1.1\r\nhost: t\r\ncontent-length: 2\r\n" + big

    answer = exchange(agent.port, head + b"\r\n{}")

    assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]
    assert envelope(answer)["code"] == "request_header_fields_too_large"
    assert agent.sample("corral_requests_total") is None, "the app never saw the request"


def test_a_head_that_never_ends_gets_408(
    serve: Callable[..., Running], upstream: FakeOpenAI
) -> None:
    agent = serve(agent_config(upstream.base_url), settings=Settings(header_timeout_seconds=0.3))

    answer = exchange(agent.port, b"POST /v1/chat/completions HTTP/1.1\r\nhost: t\r\n")

    assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
    assert envelope(answer)["code"] == "request_timeout"


def test_a_body_that_never_ends_gets_408_and_leaves_nothing_in_flight(
    serve: Callable[..., Running], upstream: FakeOpenAI
) -> None:
    agent = serve(agent_config(upstream.base_url), settings=Settings(body_timeout_seconds=0.3))
    head = b"POST /v1/chat/completions HTTP/1.1\r\nhost: t\r\ncontent-type: application/json\r\n"

    answer = exchange(agent.port, head + b'content-length: 100\r\n\r\n{"model": ')

    assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
    assert envelope(answer)["code"] == "request_body_timeout"
    assert agent.sample("corral_inflight_requests") == 0
    assert upstream.requests == []


@pytest.fixture
def with_tool(
    serve: Callable[..., Running], upstream: FakeOpenAI, tool_server: ToolServer
) -> Callable[..., Running]:
    def start(url_path: str, **http: Any) -> Running:
        tool = {
            "name": "lookup",
            "description": "look an order up",
            "parameters": {"type": "object"},
            "http": {"url": f"{tool_server.url}{url_path}", **http},
        }
        return serve(agent_config(upstream.base_url, tools=[tool]))

    return start


def tool_result(upstream: FakeOpenAI) -> str:
    """What the model was told the tool answered (its second request's tool message)."""
    (message,) = [m for m in upstream.requests[1].body["messages"] if m["role"] == "tool"]
    content: str = message["content"]
    return content


def test_a_tool_argument_making_the_url_too_long_is_a_tool_error_not_a_500(
    with_tool: Callable[..., Running], upstream: FakeOpenAI, tool_server: ToolServer
) -> None:
    agent = with_tool("/orders/{order_id}")
    upstream.enqueue(
        scripts.tool_calls(scripts.call("lookup", {"order_id": "7" * 70_000})),
        scripts.text("That order id is too long."),
    )

    answer = agent.client().chat.completions.create(model=AGENT, messages=USER)

    assert answer.choices[0].message.content == "That order id is too long."
    assert tool_result(upstream).startswith("error: the arguments make the URL longer than")
    assert tool_server.requests == []


def test_deeply_nested_tool_arguments_are_a_tool_error_not_a_500(
    serve: Callable[..., Running], upstream: FakeOpenAI, tool_server: ToolServer
) -> None:
    tool = {
        "name": "lookup",
        "description": "d",
        "parameters": {"type": "object"},
        "http": {"url": f"{tool_server.url}/orders", "method": "POST"},
    }
    agent = serve(agent_config(upstream.base_url, tools=[tool]))
    nested = '{"a":' * 100_000 + "1" + "}" * 100_000
    upstream.enqueue(
        scripts.tool_calls(scripts.Call("lookup", raw=nested)),
        scripts.text("Could not look it up."),
    )

    answer = agent.client().chat.completions.create(model=AGENT, messages=USER)

    assert answer.choices[0].message.content == "Could not look it up."
    assert tool_result(upstream) == "error: arguments nest deeper than 32 levels"
    assert tool_server.requests == []


def test_a_gzip_tool_answer_reaches_the_model_decoded_and_capped_by_its_decoded_size(
    with_tool: Callable[..., Running], upstream: FakeOpenAI, tool_server: ToolServer
) -> None:
    status = json.dumps({"order": 7, "status": "shipped"}).encode()
    bomb = gzip.compress(b"0" * 5_000_000)  # 5 MB of zeros in about 5 KB
    tool_server.routes["/small"] = ToolReply(
        body=gzip.compress(status), headers=(("content-encoding", "gzip"),)
    )
    tool_server.routes["/bomb"] = ToolReply(body=bomb, headers=(("content-encoding", "gzip"),))
    small = with_tool("/small")
    upstream.enqueue(scripts.tool_calls(scripts.call("lookup")), scripts.text("Shipped."))

    small.client().chat.completions.create(model=AGENT, messages=USER)

    assert tool_result(upstream) == status.decode()
    upstream.reset()
    capped = with_tool("/bomb", maxResponseBytes=1000)
    upstream.enqueue(scripts.tool_calls(scripts.call("lookup")), scripts.text("Too big."))

    capped.client().chat.completions.create(model=AGENT, messages=USER)

    assert tool_result(upstream) == "0" * 1000 + "\n[response cut at 1000 bytes]"


KEY = "sk-live-0123456789abcdefghijklmnop"


def test_an_upstream_echoing_the_key_reaches_neither_the_client_nor_the_log(
    serve: Callable[..., Running], upstream: FakeOpenAI, caplog: pytest.LogCaptureFixture
) -> None:
    plain = agent_config(upstream.base_url)
    model = plain.models[0].model_copy(update={"api_key_env": "OPENAI_KEY"})
    config = plain.model_copy(update={"models": [model]})
    agent = serve(config, env={"OPENAI_KEY": KEY})
    upstream.enqueue(scripts.error(401, f"Incorrect API key provided: {KEY}"))

    with caplog.at_level(logging.INFO), pytest.raises(openai.APIStatusError) as raised:
        agent.client().chat.completions.create(model=AGENT, messages=USER)

    assert raised.value.status_code == 502
    assert KEY not in raised.value.response.text
    assert "Incorrect API key provided: [redacted]" in raised.value.response.text
    assert KEY not in caplog.text
    assert "[redacted]" in caplog.text


def test_a_client_that_leaves_a_whole_answer_stops_its_upstream_call(
    serve: Callable[..., Running], upstream: FakeOpenAI
) -> None:
    agent = serve(agent_config(upstream.base_url))
    upstream.enqueue(scripts.hang())

    with pytest.raises(openai.APITimeoutError):
        agent.client(timeout=0.5).chat.completions.create(model=AGENT, messages=USER)

    # The model call would otherwise wait out its 60 s timeout with the request in flight.
    assert _eventually(lambda: agent.sample("corral_inflight_requests") == 0, limit=10)
    assert agent.sample("corral_requests_total", status="499") == 1


def test_a_request_past_its_deadline_gets_504_naming_the_setting(
    serve: Callable[..., Running], upstream: FakeOpenAI
) -> None:
    agent = serve(agent_config(upstream.base_url, requestTimeoutSeconds=0.5))
    upstream.enqueue(scripts.hang())

    with pytest.raises(openai.APIStatusError) as raised:
        agent.client().chat.completions.create(model=AGENT, messages=USER)

    assert raised.value.status_code == 504
    assert raised.value.code == "request_timeout"
    assert "requestTimeoutSeconds" in raised.value.message


def test_a_stream_past_its_deadline_ends_with_an_error_event(
    serve: Callable[..., Running], upstream: FakeOpenAI
) -> None:
    agent = serve(agent_config(upstream.base_url, requestTimeoutSeconds=1))
    upstream.enqueue(scripts.text("one two three four", stall_after=1))

    chunks = agent.client().chat.completions.create(model=AGENT, messages=USER, stream=True)
    with pytest.raises(openai.APIError, match="requestTimeoutSeconds"):
        for _ in chunks:
            pass


@pytest.mark.parametrize("value", ["yes", "true", 1, "1"])
def test_stream_must_be_a_json_boolean(agent: Running, value: object) -> None:
    body = {"model": AGENT, "messages": USER, "stream": value}

    answer = agent.post("/v1/chat/completions", json=body)

    assert answer.status_code == 422, answer.text
    assert answer.json()["error"]["param"] == "stream"


@pytest.fixture
def draining_runtime(tmp_path: Path) -> Iterator[tuple[Process, FakeOpenAI]]:
    words = "".join(f"w{n} " for n in range(100))
    with FakeOpenAI(scripts.text(words, chunk_delay=0.1)) as slow:
        config = agent_config(slow.base_url, server={"drainTimeoutSeconds": 1})
        path = tmp_path / "runtime.json"
        path.write_text(config.to_json())
        process = Process(path)
        try:
            process.wait_ready()
            yield process, slow
        finally:
            process.stop()


def test_a_stream_longer_than_the_drain_ends_with_an_error_event_not_a_cut(
    draining_runtime: tuple[Process, FakeOpenAI],
) -> None:
    runtime, _ = draining_runtime
    received, reader = stream_started(runtime)

    runtime.proc.send_signal(signal.SIGTERM)

    reader.join(timeout=30)
    assert runtime.wait_exit() == 0
    events = [e for e in b"".join(received).decode().split("\n\n") if e]
    last = json.loads(events[-1].removeprefix("data: "))
    assert last["error"]["code"] == "shutting_down", events[-3:]


def test_a_body_still_arriving_does_not_hold_the_drain(
    draining_runtime: tuple[Process, FakeOpenAI],
) -> None:
    runtime, slow = draining_runtime
    head = b"POST /v1/chat/completions HTTP/1.1\r\nhost: t\r\ncontent-type: application/json\r\n"
    with socket.create_connection(("127.0.0.1", runtime.port), timeout=READ_LIMIT) as sock:
        sock.sendall(head + b'content-length: 100\r\n\r\n{"model": ')
        assert _eventually(lambda: "corral_inflight_requests 1.0" in metrics(runtime))

        runtime.proc.send_signal(signal.SIGTERM)

        assert runtime.wait_exit() == 0
    logs = [json.loads(line) for line in runtime.proc.stderr.read().splitlines()]  # type: ignore[union-attr]
    assert any(entry["msg"].startswith("drained: no request in flight") for entry in logs), logs
    assert slow.requests == []


def metrics(runtime: Process) -> str:
    return httpx.get(f"{runtime.url}/metrics", timeout=5).text


class Broken:
    """A provider with a bug: it raises what no handler expects."""

    provider = "openai"
    model = "broken"

    async def complete(self, params: object) -> object:
        raise RuntimeError("a bug")

    async def stream(self, params: object) -> object:
        raise RuntimeError("a bug")

    async def aclose(self) -> None:
        return None


def test_an_unexpected_error_is_a_500_envelope_logged_with_its_request_id(
    serve: Callable[..., Running], upstream: FakeOpenAI, caplog: pytest.LogCaptureFixture
) -> None:
    agent = serve(agent_config(upstream.base_url), chain_factory=lambda *args: Broken())

    with caplog.at_level(logging.ERROR):
        answer = agent.post("/v1/chat/completions", json={"model": AGENT, "messages": USER})

    assert answer.status_code == 500
    assert answer.json()["error"]["code"] == "internal_error"
    assert "a bug" not in answer.text
    (record,) = [r for r in caplog.records if r.getMessage() == "unhandled error"]
    assert record.request_id == answer.headers["x-request-id"]  # type: ignore[attr-defined]
