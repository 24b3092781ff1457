"""The `openai` provider against wire quirks the scripted fake does not produce: answers that
are mislabelled or not completions, and error events inside a stream. The SDK only decodes
the JSON; the provider maps it (no SDK response models in between), so these edges are ours."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import pytest

from corral.runtime.providers import base
from corral.runtime.providers.openai import OpenAIProvider
from fakes import serving

pytestmark = pytest.mark.anyio

PARAMS = base.ChatParams(messages=[{"role": "user", "content": "Where is order 7?"}])
Answer = Callable[[serving.RecordedRequest, serving.Exchange], Awaitable[None]]


class WireUpstream(serving.FakeServer):
    """Answers every request with whatever `answer` the test set."""

    answer: Answer | None = None

    async def handle(self, request: serving.RecordedRequest, exchange: serving.Exchange) -> None:
        assert self.answer is not None, "the test sets how to answer"
        await self.answer(request, exchange)


@pytest.fixture(scope="module")
def _server() -> Iterator[WireUpstream]:
    with WireUpstream() as fake:
        assert isinstance(fake, WireUpstream)
        yield fake


@pytest.fixture
def upstream(_server: WireUpstream) -> WireUpstream:
    _server.reset()
    _server.answer = None
    return _server


@pytest.fixture
async def provider(upstream: WireUpstream) -> AsyncIterator[OpenAIProvider]:
    made = OpenAIProvider(model="m", api_key=None, base_url=f"{upstream.url}/v1", timeout=5.0)
    yield made
    await made.aclose()


def chunk(delta: dict[str, object], finish: str | None = None) -> str:
    return json.dumps({"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})


async def test_a_json_answer_labelled_as_plain_text_is_still_understood(
    upstream: WireUpstream, provider: OpenAIProvider
) -> None:
    answer = {"model": "m", "choices": [{"message": {"content": "ok"}, "finish_reason": "stop"}]}

    async def mislabelled(request: serving.RecordedRequest, exchange: serving.Exchange) -> None:
        await exchange.raw(200, json.dumps(answer).encode(), "text/plain")

    upstream.answer = mislabelled
    assert (await provider.complete(PARAMS)).content == "ok"


async def test_a_json_answer_without_choices_is_a_retryable_malformed_response(
    upstream: WireUpstream, provider: OpenAIProvider
) -> None:
    async def listing(request: serving.RecordedRequest, exchange: serving.Exchange) -> None:
        await exchange.json(200, {"object": "list", "data": []})

    upstream.answer = listing
    with pytest.raises(base.ProviderUnavailable, match=r"malformed.*no choices") as caught:
        await provider.complete(PARAMS)
    assert caught.value.retryable


async def test_an_error_event_inside_a_stream_raises_after_the_pieces_already_received(
    upstream: WireUpstream, provider: OpenAIProvider
) -> None:
    async def overloaded(request: serving.RecordedRequest, exchange: serving.Exchange) -> None:
        await exchange.start_stream()
        await exchange.event(chunk({"content": "one "}))
        await exchange.event(json.dumps({"error": {"message": "overloaded", "type": "server"}}))
        await exchange.end_stream()

    upstream.answer = overloaded
    stream = provider.stream(PARAMS)
    assert (await anext(stream)).content == "one "
    with pytest.raises(base.ProviderUnavailable, match="overloaded") as caught:
        await anext(stream)
    assert caught.value.retryable


async def test_a_stream_chunk_of_the_wrong_shape_is_a_malformed_response(
    upstream: WireUpstream, provider: OpenAIProvider
) -> None:
    async def wrong_shape(request: serving.RecordedRequest, exchange: serving.Exchange) -> None:
        await exchange.start_stream()
        await exchange.event(json.dumps({"choices": [{"delta": {"content": 7}}]}))
        await exchange.end_stream()

    upstream.answer = wrong_shape
    with pytest.raises(base.ProviderUnavailable, match=r"malformed.*delta\.content"):
        await anext(provider.stream(PARAMS))
