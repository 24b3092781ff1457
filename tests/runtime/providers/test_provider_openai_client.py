"""Our `openai` provider on the SDK's `DefaultAioHttpClient`, against a raw loopback server
whose every byte the test scripts: connections are kept alive and dropped when they must be,
the SDK's exceptions and our provider errors come out right, streams arrive piece by piece, TLS
verifies, a proxy from the environment is honoured, and an upstream's error text reaches our
error bounded and without the key. On asyncio's own loop and on uvloop."""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import openai
import pytest

from corral.runtime.providers import base
from corral.runtime.providers.openai import OpenAIProvider, sdk_client
from fakes.rawhttp import Peer, RawServer, Request, chunked, respond, response

pytestmark = pytest.mark.anyio

GUARD_SECONDS = 10
PARAMS = base.ChatParams(messages=[{"role": "user", "content": "Where is order 7?"}])
COMPLETION = json.dumps(
    {
        "id": "c1",
        "object": "chat.completion",
        "model": "m",
        "choices": [{"index": 0, "message": {"content": "today"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6},
    }
).encode()
SSE_HEAD = response(
    200, headers={"content-type": "text/event-stream", "transfer-encoding": "chunked"}, length=False
)


def event(content: str | None, finish: str | None = None) -> bytes:
    delta = {} if content is None else {"content": content}
    piece = {"id": "c1", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    data = f"data: {json.dumps(piece)}\n\n".encode()
    return b"%x\r\n%s\r\n" % (len(data), data)


DONE = event(None, "stop") + chunked(b"data: [DONE]\n\n")


def completion(request: Request) -> bytes:
    return response(200, COMPLETION)


@pytest.fixture(params=["asyncio", "uvloop"])
def anyio_backend(request: pytest.FixtureRequest) -> tuple[str, dict[str, bool]]:
    return "asyncio", {"use_uvloop": request.param == "uvloop"}


@pytest.fixture
async def sdk() -> AsyncIterator[openai.AsyncOpenAI]:
    """The SDK client exactly as the provider builds it; point it with `with_options`."""
    client = sdk_client(api_key="sk-test", base_url=None, timeout=30)
    yield client
    await client.close()


def provider_for(server: RawServer, **options: Any) -> OpenAIProvider:
    return OpenAIProvider(model="m", api_key="sk-test", base_url=f"{server.url}/v1", **options)


async def test_the_sdk_reuses_one_connection_and_sends_what_it_built(
    sdk: openai.AsyncOpenAI,
) -> None:
    async with RawServer(respond(completion)) as server:
        client = sdk.with_options(base_url=f"{server.url}/v1")
        for _ in range(3):
            answer = await client.chat.completions.create(
                model="m", messages=[{"role": "user", "content": "hi"}]
            )
            assert answer.choices[0].message.content == "today"
        assert server.connections == 1
        sent = server.requests[0]
        assert (sent.method, sent.target) == ("POST", "/v1/chat/completions")
        assert sent.headers["authorization"] == "Bearer sk-test"
        assert json.loads(sent.body)["messages"] == [{"role": "user", "content": "hi"}]


async def test_stream_pieces_reach_the_provider_before_the_server_sends_the_rest() -> None:
    first_seen = asyncio.Event()

    async def stream_in_two_halves(peer: Peer) -> None:
        if await peer.request() is not None:
            await peer.send(SSE_HEAD + event("one "))
            await first_seen.wait()
            await peer.send(event("two") + DONE)

    async with RawServer(stream_in_two_halves) as server:
        provider = provider_for(server)
        try:
            deltas = provider.stream(PARAMS)
            async with asyncio.timeout(GUARD_SECONDS):
                first = await anext(deltas)
            assert first.content == "one "
            first_seen.set()
            rest = [delta async for delta in deltas]
        finally:
            await provider.aclose()
    assert [d.content for d in rest if d.content] == ["two"]
    assert [d.finish_reason for d in rest if d.finish_reason] == ["stop"]


async def test_a_stream_left_early_does_not_leave_its_connection_in_the_pool() -> None:
    async def stream_then_answer(peer: Peer) -> None:
        while (request := await peer.request()) is not None:
            if json.loads(request.body).get("stream"):
                await peer.send(SSE_HEAD + event("one "))
            else:
                await peer.send(completion(request))

    async with RawServer(stream_then_answer) as server:
        provider = provider_for(server)
        try:
            deltas = provider.stream(PARAMS)
            assert (await anext(deltas)).content == "one "
            await deltas.aclose()
            assert (await provider.complete(PARAMS)).content == "today"
        finally:
            await provider.aclose()
        assert server.connections == 2


@pytest.mark.parametrize(
    ("status", "sdk_error", "provider_error"),
    [
        (400, openai.BadRequestError, base.ProviderRejected),
        (401, openai.AuthenticationError, base.ProviderRejected),
        (404, openai.NotFoundError, base.ProviderRejected),
        (429, openai.RateLimitError, base.ProviderUnavailable),
        (500, openai.InternalServerError, base.ProviderUnavailable),
        (503, openai.InternalServerError, base.ProviderUnavailable),
    ],
)
async def test_an_error_status_becomes_the_sdk_exception_and_our_provider_error(
    sdk: openai.AsyncOpenAI,
    status: int,
    sdk_error: type[openai.APIStatusError],
    provider_error: type[base.ProviderError],
) -> None:
    envelope = json.dumps({"error": {"message": f"scripted {status}", "type": "x"}}).encode()
    answer = response(status, envelope, {"retry-after": "3"})
    async with RawServer(respond(lambda request: answer)) as server:
        client = sdk.with_options(base_url=f"{server.url}/v1")
        with pytest.raises(sdk_error) as raised:
            await client.chat.completions.create(model="m", messages=[])
        assert raised.value.status_code == status
        provider = provider_for(server)
        try:
            with pytest.raises(provider_error, match=f"scripted {status}") as mapped:
                await provider.complete(PARAMS)
        finally:
            await provider.aclose()
        assert mapped.value.status == status
        assert server.connections == 2, "an error answer read to its end keeps the connection"


async def test_an_upstream_that_never_answers_is_an_api_timeout(sdk: openai.AsyncOpenAI) -> None:
    forever = asyncio.Event()

    async def never_answer(peer: Peer) -> None:
        await peer.request()
        await forever.wait()

    async with RawServer(never_answer) as server:
        client = sdk.with_options(base_url=f"{server.url}/v1", timeout=0.2)
        with pytest.raises(openai.APITimeoutError):
            await client.chat.completions.create(model="m", messages=[])
        provider = provider_for(server, timeout=0.2)
        try:
            with pytest.raises(base.ProviderTimeout):
                await provider.complete(PARAMS)
        finally:
            await provider.aclose()


async def test_a_refused_connection_is_an_api_connection_error(sdk: openai.AsyncOpenAI) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}/v1"
    with pytest.raises(openai.APIConnectionError):
        await sdk.with_options(base_url=url).chat.completions.create(model="m", messages=[])
    provider = OpenAIProvider(model="m", api_key=None, base_url=url)
    try:
        with pytest.raises(base.ProviderUnavailable, match="cannot reach upstream"):
            await provider.complete(PARAMS)
    finally:
        await provider.aclose()


async def test_a_server_dying_mid_body_is_a_connection_error_then_a_fresh_connection(
    sdk: openai.AsyncOpenAI,
) -> None:
    async def die_mid_body_once(peer: Peer) -> None:
        if await peer.request() is not None:
            await peer.send(response(200, COMPLETION)[:-20])
            await peer.close()

    async with RawServer(die_mid_body_once) as server:
        client = sdk.with_options(base_url=f"{server.url}/v1")
        with pytest.raises(openai.APIConnectionError):
            await client.chat.completions.create(model="m", messages=[])
        server.handler = respond(completion)
        await client.chat.completions.create(model="m", messages=[])
        assert server.connections == 2


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A throwaway self-signed certificate for `localhost`, made by the openssl CLI."""
    where = tmp_path_factory.mktemp("tls")
    cert, key = where / "cert.pem", where / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-nodes", "-days", "1", "-subj", "/CN=localhost"),
            *("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"),
            *("-addext", "subjectAltName=DNS:localhost", "-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


@pytest.fixture
def tls_server_context(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*certificate)
    return context


async def test_tls_verifies_the_server_by_the_name_it_sends(
    certificate: tuple[Path, Path], tls_server_context: ssl.SSLContext
) -> None:
    trusting = ssl.create_default_context(cafile=str(certificate[0]))
    async with RawServer(respond(completion), tls=tls_server_context) as server:
        base_url = f"https://localhost:{server.port}/v1"
        for context, works in ((trusting, True), (True, False)):
            http = openai.DefaultAioHttpClient(verify=context)
            async with openai.AsyncOpenAI(
                api_key="k", base_url=base_url, max_retries=0, http_client=http
            ) as client:
                if works:
                    answer = await client.chat.completions.create(model="m", messages=[])
                    assert answer.choices[0].message.content == "today"
                else:
                    with pytest.raises(openai.APIConnectionError):
                        await client.chat.completions.create(model="m", messages=[])
        assert server.server_names[0] == "localhost"
        assert len(server.requests) == 1, "the untrusted certificate stopped the second call"


@pytest.fixture
def no_proxy_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """The environment without any proxy variable, to set them per test."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    return monkeypatch


async def test_a_proxy_from_the_environment_is_honoured_unless_no_proxy_exempts(
    no_proxy_env: pytest.MonkeyPatch,
) -> None:
    async with (
        RawServer(respond(completion)) as upstream,
        RawServer(respond(completion)) as proxy,
    ):
        no_proxy_env.setenv("HTTP_PROXY", proxy.url)
        proxied = provider_for(upstream)
        no_proxy_env.setenv("NO_PROXY", "127.0.0.1")
        exempt = provider_for(upstream)
        try:
            await proxied.complete(PARAMS)
            await exempt.complete(PARAMS)
        finally:
            await proxied.aclose()
            await exempt.aclose()
        assert [r.target for r in proxy.requests] == [f"{upstream.url}/v1/chat/completions"]
        assert [r.target for r in upstream.requests] == ["/v1/chat/completions"]


async def test_an_upstream_echoing_the_key_in_its_error_never_passes_it_on() -> None:
    key = "sk-live-0123456789abcdefghijklmnop"
    echo = json.dumps({"error": {"message": f"bad key {key}\n" + "x" * 5000}}).encode()
    async with RawServer(respond(lambda request: response(401, echo))) as server:
        provider = OpenAIProvider(model="m", api_key=key, base_url=f"{server.url}/v1")
        try:
            with pytest.raises(base.ProviderRejected) as raised:
                await provider.complete(PARAMS)
        finally:
            await provider.aclose()
    message = str(raised.value)
    assert key not in message
    assert key[:12] not in message
    assert "bad key [redacted]" in message
    assert "\n" not in message
    assert len(message) < 700, "the upstream's text is bounded"


async def test_closing_the_provider_closes_its_connections() -> None:
    gone = asyncio.Event()

    async def answer_until_gone(peer: Peer) -> None:
        while (request := await peer.request()) is not None:
            await peer.send(completion(request))
        gone.set()

    async with RawServer(answer_until_gone) as server:
        provider = provider_for(server)
        await provider.complete(PARAMS)
        await provider.aclose()
        async with asyncio.timeout(GUARD_SECONDS):
            await gone.wait()
