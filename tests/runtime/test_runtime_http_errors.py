"""Every error reaches the official openai SDK as the exception class it expects."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import openai
import pytest
from runtime_harness import AGENT, Running, agent_config

from corral.runtime.settings import Settings
from fakes import scripts
from fakes.openai_server import FakeOpenAI

USER = [{"role": "user", "content": "hello"}]


@pytest.fixture
def guarded(serve: Callable[..., Running], upstream: FakeOpenAI) -> Running:
    """An agent that requires one of two API keys."""
    config = agent_config(upstream.base_url, auth={"apiKeysEnv": "KEYS"})
    return serve(config, env={"KEYS": "first-key\n\n  second-key  \n"})


def test_a_request_without_a_key_is_a_401_envelope_asking_for_bearer(guarded: Running) -> None:
    answer = guarded.post("/v1/chat/completions", json={"model": AGENT, "messages": USER})

    assert answer.status_code == 401
    assert answer.headers["www-authenticate"] == "Bearer"
    assert answer.json()["error"]["code"] == "invalid_api_key"


def test_a_wrong_api_key_raises_authentication_error(guarded: Running) -> None:
    with pytest.raises(openai.AuthenticationError):
        guarded.client(api_key="second-ke").chat.completions.create(model=AGENT, messages=USER)
    with pytest.raises(openai.AuthenticationError):
        guarded.client(api_key="wrong").models.list()


def test_any_listed_api_key_is_accepted(guarded: Running) -> None:
    for key in ("first-key", "second-key"):
        answer = guarded.client(api_key=key).chat.completions.create(model=AGENT, messages=USER)
        assert answer.choices[0].message.content


def test_health_probes_need_no_key_when_auth_is_on(guarded: Running) -> None:
    assert guarded.get("/healthz").status_code == 200
    assert guarded.get("/readyz").status_code == 200


def test_an_unknown_model_raises_not_found(agent: Running) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        agent.client().chat.completions.create(model="gpt-4o", messages=USER)

    assert caught.value.code == "model_not_found"
    assert caught.value.param == "model"


def test_an_unknown_route_is_a_404_envelope(agent: Running) -> None:
    answer = agent.get("/v1/embeddings")

    assert answer.status_code == 404
    assert set(answer.json()["error"]) == {"message", "type", "param", "code"}


def test_an_invalid_field_raises_unprocessable_entity_naming_the_field(agent: Running) -> None:
    with pytest.raises(openai.UnprocessableEntityError) as caught:
        agent.client().chat.completions.create(model=AGENT, messages=USER, temperature=7)

    assert caught.value.param == "temperature"

    with pytest.raises(openai.UnprocessableEntityError) as caught:
        agent.client().chat.completions.create(
            model=AGENT,
            messages=[{"role": "user", "content": 5}],  # type: ignore[list-item]
        )
    assert caught.value.param == "messages[0].content"


def test_a_body_that_is_not_json_raises_bad_request(agent: Running) -> None:
    answer = agent.post(
        "/v1/chat/completions", content=b"{not json", headers={"content-type": "application/json"}
    )

    assert answer.status_code == 400
    assert answer.json()["error"]["type"] == "invalid_request_error"


def test_client_supplied_tools_raise_bad_request(agent: Running) -> None:
    tool = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
    with pytest.raises(openai.BadRequestError) as caught:
        agent.client().chat.completions.create(model=AGENT, messages=USER, tools=[tool])

    assert caught.value.param == "tools"


def test_a_body_over_the_size_cap_is_413(
    serve: Callable[..., Running], upstream: FakeOpenAI
) -> None:
    small = serve(agent_config(upstream.base_url), settings=Settings(max_request_bytes=2048))

    with pytest.raises(openai.APIStatusError) as caught:
        small.client().chat.completions.create(
            model=AGENT, messages=[{"role": "user", "content": "x" * 4096}]
        )

    assert caught.value.status_code == 413
    assert upstream.requests == []


def test_the_rate_limit_raises_rate_limit_error_with_retry_headers(
    serve: Callable[..., Running], upstream: FakeOpenAI
) -> None:
    limited = serve(agent_config(upstream.base_url, rateLimit={"requestsPerMinute": 2}))
    client = limited.client()
    first = client.chat.completions.with_raw_response.create(model=AGENT, messages=USER)
    assert first.headers["x-ratelimit-limit-requests"] == "2"
    assert first.headers["x-ratelimit-remaining-requests"] == "1"
    client.chat.completions.create(model=AGENT, messages=USER)

    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(model=AGENT, messages=USER)

    headers = caught.value.response.headers
    assert int(headers["retry-after"]) >= 1
    assert headers["x-ratelimit-remaining-requests"] == "0"
    assert caught.value.code == "rate_limit_exceeded"
    assert caught.value.type == "requests"


def test_an_upstream_500_becomes_a_502_internal_server_error(
    agent: Running, upstream: FakeOpenAI
) -> None:
    upstream.default = scripts.error(500)

    with pytest.raises(openai.InternalServerError) as caught:
        agent.client().chat.completions.create(model=AGENT, messages=USER)

    assert caught.value.status_code == 502


def test_an_upstream_429_stays_a_429_with_its_retry_after(
    agent: Running, upstream: FakeOpenAI
) -> None:
    upstream.default = scripts.error(429, retry_after=30)

    with pytest.raises(openai.RateLimitError) as caught:
        agent.client().chat.completions.create(model=AGENT, messages=USER)

    assert caught.value.response.headers["retry-after"] == "30"
    assert caught.value.code == "upstream_rate_limited"


def test_an_upstream_that_hangs_becomes_a_504(
    serve: Callable[..., Running], upstream: FakeOpenAI
) -> None:
    config = agent_config(upstream.base_url)
    model = config.models[0].model_copy(update={"timeout_seconds": 0.3})
    hanging = serve(config.model_copy(update={"models": [model]}))
    upstream.default = scripts.hang()

    with pytest.raises(openai.APIStatusError) as caught:
        hanging.client().chat.completions.create(model=AGENT, messages=USER)

    assert caught.value.status_code == 504


def test_an_upstream_that_rejects_the_request_is_a_400(
    agent: Running, upstream: FakeOpenAI
) -> None:
    upstream.default = scripts.error(400, "maximum context length exceeded")

    with pytest.raises(openai.BadRequestError) as caught:
        agent.client().chat.completions.create(model=AGENT, messages=USER)

    assert "maximum context length" in caught.value.message


def test_a_stream_that_breaks_after_its_first_bytes_raises_api_error(
    agent: Running, upstream: FakeOpenAI
) -> None:
    upstream.default = scripts.text("one two three four", break_after=2)
    received: list[str] = []
    stream = agent.client().chat.completions.create(model=AGENT, messages=USER, stream=True)

    def consume() -> None:
        for chunk in stream:
            received.extend(c.delta.content or "" for c in chunk.choices)

    with pytest.raises(openai.APIError) as caught:
        consume()

    assert "".join(received) == "one two "
    assert isinstance(caught.value.body, dict)
    assert caught.value.body["type"] == "server_error"


def test_a_stream_failing_before_its_first_byte_gets_a_real_status(
    agent: Running, upstream: FakeOpenAI
) -> None:
    upstream.default = scripts.error(503)

    answer = httpx.post(
        agent.base_url + "/chat/completions",
        json={"model": AGENT, "messages": USER, "stream": True},
        timeout=10,
    )

    assert answer.status_code == 502
    assert answer.headers["content-type"] == "application/json"
