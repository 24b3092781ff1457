"""Chat through the real server with the official openai SDK: shapes, streaming, headers."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

import httpx
import openai
import pytest
from runtime_harness import AGENT, Running, agent_config

from fakes import scripts
from fakes.openai_server import FakeOpenAI

USER = [{"role": "user", "content": "Where is my order?"}]


def test_a_whole_answer_has_the_openai_shape_and_counts_usage(
    agent: Running, upstream: FakeOpenAI
) -> None:
    upstream.default = scripts.text("It ships tomorrow.", usage=(12, 4))

    answer = agent.client().chat.completions.create(model=AGENT, messages=USER)

    assert answer.object == "chat.completion"
    assert answer.model == AGENT
    assert answer.id.startswith("chatcmpl-")
    assert [c.message.content for c in answer.choices] == ["It ships tomorrow."]
    assert answer.choices[0].finish_reason == "stop"
    assert answer.choices[0].message.role == "assistant"
    assert answer.usage is not None
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens) == (12, 4)
    assert answer.usage.total_tokens == 16


def test_the_model_sees_persona_examples_then_the_client_messages(
    agent: Running, upstream: FakeOpenAI
) -> None:
    agent.client().chat.completions.create(
        model=AGENT, messages=[{"role": "developer", "content": "Be brief."}, *USER]
    )

    sent = upstream.requests[-1].body["messages"]
    assert sent == [
        {"role": "system", "content": "You are a concise support engineer."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello! How can I help?"},
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Where is my order?"},
    ]


def test_a_stream_has_one_finish_reason_a_usage_chunk_and_done(
    agent: Running, upstream: FakeOpenAI
) -> None:
    upstream.default = scripts.text("one two three", usage=(5, 3))

    chunks = list(
        agent.client().chat.completions.create(
            model=AGENT, messages=USER, stream=True, stream_options={"include_usage": True}
        )
    )

    assert {c.object for c in chunks} == {"chat.completion.chunk"}
    assert len({c.id for c in chunks}) == 1
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "one two three"
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert [f for f in finishes if f is not None] == ["stop"]
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (5, 3)


def test_a_stream_without_include_usage_ends_with_done_and_no_usage(
    agent: Running, upstream: FakeOpenAI
) -> None:
    upstream.default = scripts.text("a b")
    body = {"model": AGENT, "messages": USER, "stream": True}

    raw = agent.post("/v1/chat/completions", json=body)

    assert raw.headers["content-type"].startswith("text/event-stream")
    events = [line for line in raw.text.split("\n\n") if line]
    assert events[-1] == "data: [DONE]"
    assert '"usage"' not in raw.text


def test_every_answer_carries_a_request_id_and_keeps_a_valid_incoming_one(
    agent: Running,
) -> None:
    answer = agent.client().chat.completions.with_raw_response.create(model=AGENT, messages=USER)
    assert len(answer.headers["x-request-id"]) >= 16
    assert answer.parse().id == f"chatcmpl-{answer.headers['x-request-id']}"

    kept = agent.client().chat.completions.with_raw_response.create(
        model=AGENT, messages=USER, extra_headers={"x-request-id": "trace-42"}
    )
    assert kept.headers["x-request-id"] == "trace-42"


def test_models_lists_and_describes_the_agent_only(agent: Running) -> None:
    client = agent.client()
    listed = client.models.list()

    assert [m.id for m in listed.data] == [AGENT]
    assert listed.data[0].owned_by == "corral"
    assert client.models.retrieve(AGENT).id == AGENT
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("gpt-4o")


def test_health_and_readiness_answer_without_auth(agent: Running) -> None:
    assert agent.get("/healthz").json() == {"status": "ok"}
    assert agent.get("/readyz").json() == {"status": "ready"}


def test_sampling_options_reach_the_model(agent: Running, upstream: FakeOpenAI) -> None:
    agent.client().chat.completions.create(
        model=AGENT, messages=USER, temperature=0.2, top_p=0.5, max_tokens=64, stop=["END"]
    )

    sent = upstream.requests[-1].body
    assert (sent["temperature"], sent["top_p"], sent["stop"]) == (0.2, 0.5, ["END"])
    assert 64 in (sent.get("max_tokens"), sent.get("max_completion_tokens"))


def test_async_sdk_streams_the_same_text(agent: Running, upstream: FakeOpenAI) -> None:
    upstream.default = scripts.text("streamed to async clients")

    async def collect() -> str:
        client = agent.async_client()
        stream = await client.chat.completions.create(model=AGENT, messages=USER, stream=True)
        parts = [c.choices[0].delta.content or "" async for c in stream if c.choices]
        await client.close()
        return "".join(parts)

    assert asyncio.run(collect()) == "streamed to async clients"


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/models"])
def test_api_routes_answer_json_errors_not_html(agent: Running, path: str) -> None:
    answer = httpx.put(agent.url + path, timeout=10)

    assert answer.status_code == 405
    assert answer.json()["error"]["code"] == "not_found"


def test_the_sdk_reads_our_error_envelope(agent: Running) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        agent.client().chat.completions.create(model="someone-else", messages=USER)

    assert caught.value.body == {
        "message": caught.value.body["message"],  # type: ignore[index]
        "type": "invalid_request_error",
        "param": "model",
        "code": "model_not_found",
    }


def test_prompts_and_answers_stay_out_of_the_logs_unless_enabled(
    serve: Callable[..., Running], upstream: FakeOpenAI, caplog: pytest.LogCaptureFixture
) -> None:
    upstream.default = scripts.text("the answer text")
    secret = [{"role": "user", "content": "my card is 4111"}]
    quiet = serve(agent_config(upstream.base_url))
    loud = serve(agent_config(upstream.base_url, server={"logPrompts": True}))

    with caplog.at_level(logging.INFO):
        quiet.client().chat.completions.create(model=AGENT, messages=secret)
        # The access line is written after the last byte went out: wait for it (bounded).
        deadline = time.monotonic() + 5
        while not any(r.name == "corral.runtime.access" for r in caplog.records):
            assert time.monotonic() < deadline, "no access log line was written"
            time.sleep(0.01)
    assert "4111" not in caplog.text
    assert "the answer text" not in caplog.text

    with caplog.at_level(logging.INFO):
        loud.client().chat.completions.create(model=AGENT, messages=secret)
    logged = [r.__dict__ for r in caplog.records if r.getMessage() in ("prompt", "answer")]
    assert logged[0]["messages"] == secret
    assert logged[1]["content"] == "the answer text"
