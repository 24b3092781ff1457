"""The upstream transport over real loopback sockets, driven through httpx2's client: keep-alive
pooling, response framing, flow control, timeouts and failures. Every test runs on asyncio's
own loop and on uvloop (what the runtime runs on)."""

from __future__ import annotations

import asyncio
import gzip
import json
import socket
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx2
import pytest

from corral.runtime.providers.transport import Transport
from fakes.rawhttp import Peer, RawServer, Request, chunked, respond, response

pytestmark = pytest.mark.anyio

OK = response(200, b'{"ok": true}')
# Bounds waits on what the server saw, so a regression fails instead of hanging the suite.
GUARD_SECONDS = 10
MakeClient = Callable[..., httpx2.AsyncClient]


async def happened(event: asyncio.Event) -> None:
    async with asyncio.timeout(GUARD_SECONDS):
        await event.wait()


@pytest.fixture(params=["asyncio", "uvloop"])
def anyio_backend(request: pytest.FixtureRequest) -> tuple[str, dict[str, bool]]:
    return "asyncio", {"use_uvloop": request.param == "uvloop"}


@pytest.fixture
async def make_client() -> AsyncIterator[MakeClient]:
    """httpx2 clients over a Transport(**options); closed afterwards."""
    made: list[httpx2.AsyncClient] = []

    def build(**options: Any) -> httpx2.AsyncClient:
        made.append(httpx2.AsyncClient(transport=Transport(**options), timeout=5.0))
        return made[-1]

    yield build
    for client in made:
        await client.aclose()


@pytest.fixture
def client(make_client: MakeClient) -> httpx2.AsyncClient:
    return make_client()


async def test_one_kept_alive_connection_carries_consecutive_requests(
    client: httpx2.AsyncClient,
) -> None:
    async with RawServer(respond(lambda request: OK)) as server:
        for _ in range(3):
            answer = await client.post(f"{server.url}/v1/x?q=1", json={"n": 1})
            assert answer.json() == {"ok": True}
        assert server.connections == 1
        assert [r.target for r in server.requests] == ["/v1/x?q=1"] * 3
        assert json.loads(server.requests[0].body) == {"n": 1}
        assert server.requests[0].headers["host"] == f"127.0.0.1:{server.port}"


@pytest.mark.parametrize(
    "answer",
    [
        response(200, b"{}", {"connection": "close"}),
        b"HTTP/1.0 200 OK\r\ncontent-length: 2\r\n\r\n{}",
    ],
    ids=["connection-close", "http-1.0"],
)
async def test_an_answer_that_ends_the_connection_is_not_reused(
    client: httpx2.AsyncClient, answer: bytes
) -> None:
    async with RawServer(respond(lambda request: answer)) as server:
        for _ in range(3):
            assert (await client.get(server.url)).content == b"{}"
        assert server.connections == 3


async def test_the_request_asking_to_close_is_not_reused(client: httpx2.AsyncClient) -> None:
    async with RawServer(respond(lambda request: OK)) as server:
        for _ in range(2):
            await client.get(server.url, headers={"connection": "close"})
        assert server.connections == 2


async def test_an_idle_connection_the_server_closed_is_replaced_by_a_new_one(
    client: httpx2.AsyncClient,
) -> None:
    closed = asyncio.Event()

    async def answer_once_then_close(peer: Peer) -> None:
        if await peer.request() is not None:
            await peer.send(OK)
            await peer.close()
            closed.set()

    async with RawServer(answer_once_then_close) as server:
        assert (await client.get(server.url)).status_code == 200
        await happened(closed)
        assert (await client.get(server.url)).status_code == 200
        assert server.connections == 2


async def test_a_chunked_answer_is_reassembled_and_its_connection_reused(
    client: httpx2.AsyncClient,
) -> None:
    head = response(200, headers={"transfer-encoding": "chunked"}, length=False)
    async with RawServer(
        respond(lambda request: head + chunked(b'{"a": ', b"[1, ", b"2]}"))
    ) as server:
        for _ in range(2):
            assert (await client.get(server.url)).json() == {"a": [1, 2]}
        assert server.connections == 1


async def test_an_answer_without_a_length_runs_until_the_server_closes(
    client: httpx2.AsyncClient,
) -> None:
    async def answer_until_close(peer: Peer) -> None:
        if await peer.request() is not None:
            await peer.send(response(200, headers={}, length=False) + b'{"whole": ')
            await peer.send(b"true}")
            await peer.close()

    async with RawServer(answer_until_close) as server:
        for _ in range(2):
            assert (await client.get(server.url)).json() == {"whole": True}
        assert server.connections == 2


@pytest.mark.parametrize(
    ("method", "answer"),
    [
        ("HEAD", response(200, headers={"content-length": "50"}, length=False)),
        ("GET", response(204, length=False)),
        ("GET", response(304, headers={"content-length": "50"}, length=False)),
    ],
    ids=["head", "204", "304"],
)
async def test_answers_that_carry_no_body_end_at_their_head(
    client: httpx2.AsyncClient, method: str, answer: bytes
) -> None:
    async with RawServer(respond(lambda request: answer if request.method == method else OK)) as s:
        assert (await client.request(method, s.url)).content == b""
        assert (await client.post(s.url)).json() == {"ok": True}
        assert s.connections == 1


async def test_informational_answers_before_the_final_one_are_skipped(
    client: httpx2.AsyncClient,
) -> None:
    interim = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\n"
    async with RawServer(respond(lambda request: interim + OK)) as server:
        answer = await client.get(server.url)
        assert (answer.status_code, answer.json()) == (200, {"ok": True})
        assert "link" not in answer.headers
        assert (await client.get(server.url)).status_code == 200
        assert server.connections == 1


async def test_a_streamed_request_body_is_sent_chunked(client: httpx2.AsyncClient) -> None:
    async def pieces() -> AsyncIterator[bytes]:
        for piece in (b"one ", b"", b"two ", b"three"):
            yield piece

    async with RawServer(respond(lambda request: OK)) as server:
        await client.post(server.url, content=pieces())
        [sent] = server.requests
        assert sent.headers["transfer-encoding"] == "chunked"
        assert sent.body == b"one two three"


async def test_a_compressed_answer_is_decoded_once(client: httpx2.AsyncClient) -> None:
    packed = gzip.compress(b'{"zipped": true}')
    answer = response(200, packed, {"content-encoding": "gzip"})
    async with RawServer(respond(lambda request: answer)) as server:
        assert (await client.get(server.url)).json() == {"zipped": True}


async def test_megabytes_travel_whole_both_ways(client: httpx2.AsyncClient) -> None:
    big = bytes(range(256)) * (6 * 4096)  # 6 MiB: well past the socket buffers and the pause mark

    def echo_length_and_send_big(request: Request) -> bytes:
        return response(200, big, {"x-received": str(len(request.body))})

    async with RawServer(respond(echo_length_and_send_big)) as server:
        answer = await client.post(server.url, content=big)
        assert answer.headers["x-received"] == str(len(big))
        assert answer.content == big
        async with client.stream("GET", server.url) as streamed:
            received = [piece async for piece in streamed.aiter_raw()]
        assert b"".join(received) == big
        assert server.connections == 1


async def test_a_response_closed_before_its_end_drops_its_connection(
    client: httpx2.AsyncClient,
) -> None:
    dropped = asyncio.Event()

    async def answer_slowly(peer: Peer) -> None:
        while (request := await peer.request()) is not None:
            if request.target == "/slow":
                await peer.send(
                    response(200, headers={"transfer-encoding": "chunked"}, length=False)
                )
                await peer.send(b"5\r\nfirst\r\n")
                await peer.reader.read()  # until the client goes away
                dropped.set()
                return
            await peer.send(OK)

    async with RawServer(answer_slowly) as server:
        async with client.stream("GET", f"{server.url}/slow") as streamed:
            async for piece in streamed.aiter_raw():
                assert piece == b"first"
                break
        await happened(dropped)
        assert (await client.get(server.url)).status_code == 200
        assert server.connections == 2


async def test_a_server_dying_mid_body_fails_the_response_and_its_connection(
    client: httpx2.AsyncClient,
) -> None:
    async def die_after_ten_bytes(peer: Peer) -> None:
        if await peer.request() is not None:
            await peer.send(response(200, headers={"content-length": "100"}, length=False))
            await peer.send(b"0123456789")
            await peer.close()

    async with RawServer(die_after_ten_bytes) as server:
        with pytest.raises(httpx2.RemoteProtocolError, match="before the end of the body"):
            await client.get(server.url)
        server.handler = respond(lambda request: OK)
        assert (await client.get(server.url)).status_code == 200
        assert server.connections == 2


async def test_a_server_closing_before_answering_is_a_remote_protocol_error(
    client: httpx2.AsyncClient,
) -> None:
    async def close_unanswered(peer: Peer) -> None:
        await peer.request()
        await peer.close()

    async with RawServer(close_unanswered) as server:
        with pytest.raises(httpx2.RemoteProtocolError, match="without sending a response"):
            await client.get(server.url)


@pytest.mark.parametrize("where", ["head", "body"])
async def test_silence_longer_than_the_read_timeout_is_a_read_timeout(
    client: httpx2.AsyncClient, where: str
) -> None:
    forever = asyncio.Event()

    async def stall(peer: Peer) -> None:
        if (request := await peer.request()) is None:
            return
        if request.target != "/stall":
            await peer.send(OK)
            await stall(peer)
            return
        if where == "body":
            await peer.send(response(200, headers={"content-length": "10"}, length=False) + b"part")
        await forever.wait()

    async with RawServer(stall) as server:
        with pytest.raises(httpx2.ReadTimeout):
            await client.get(f"{server.url}/stall", timeout=httpx2.Timeout(5.0, read=0.2))
        assert (await client.get(server.url)).status_code == 200
        assert server.connections == 2


async def test_a_port_nobody_listens_on_is_a_connect_error(client: httpx2.AsyncClient) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(httpx2.ConnectError):
        await client.get(f"http://127.0.0.1:{port}/")


async def test_a_garbled_answer_is_a_remote_protocol_error(client: httpx2.AsyncClient) -> None:
    async with RawServer(respond(lambda request: b"SPEAKING SMTP HERE\r\n\r\n")) as server:
        with pytest.raises(httpx2.RemoteProtocolError, match="malformed"):
            await client.get(server.url)


async def test_line_breaks_in_a_header_are_refused_before_anything_is_sent(
    client: httpx2.AsyncClient,
) -> None:
    async with RawServer(respond(lambda request: OK)) as server:
        with pytest.raises(httpx2.LocalProtocolError):
            await client.get(server.url, headers={"x-note": "a\r\nx-injected: 1"})
        assert server.connections == 0


async def test_an_expired_idle_connection_is_not_reused(make_client: MakeClient) -> None:
    client = make_client(keepalive_expiry=0.0)
    async with RawServer(respond(lambda request: OK)) as server:
        for _ in range(2):
            await client.get(server.url)
        assert server.connections == 2


async def test_idle_connections_beyond_the_cap_are_closed(make_client: MakeClient) -> None:
    client = make_client(max_idle_per_origin=1)
    both_in = asyncio.Barrier(2)

    async def answer_in_pairs(peer: Peer) -> None:
        while await peer.request() is not None:
            await both_in.wait()
            await peer.send(OK)

    async with RawServer(answer_in_pairs) as server:
        for _ in range(2):
            await asyncio.gather(client.get(server.url), client.get(server.url))
        assert server.connections == 3


async def test_waiting_for_a_free_slot_longer_than_the_pool_timeout_is_a_pool_timeout(
    make_client: MakeClient,
) -> None:
    client = make_client(max_in_flight=1)
    arrived, release = asyncio.Event(), asyncio.Event()

    async def hold_first(peer: Peer) -> None:
        while await peer.request() is not None:
            arrived.set()
            await release.wait()
            await peer.send(OK)

    async with RawServer(hold_first) as server:
        first = asyncio.create_task(client.get(server.url))
        await happened(arrived)
        with pytest.raises(httpx2.PoolTimeout):
            await client.get(server.url, timeout=httpx2.Timeout(5.0, pool=0.1))
        release.set()
        assert (await first).status_code == 200
        assert (await client.get(server.url)).status_code == 200


async def test_an_upload_the_server_stops_reading_is_a_write_timeout(
    client: httpx2.AsyncClient,
) -> None:
    forever = asyncio.Event()

    async def read_nothing(peer: Peer) -> None:
        await forever.wait()

    async with RawServer(read_nothing) as server:
        with pytest.raises(httpx2.WriteTimeout):
            await client.post(
                server.url, content=b"x" * (16 << 20), timeout=httpx2.Timeout(5.0, write=0.2)
            )


async def test_closing_the_client_closes_its_pooled_connections(
    make_client: MakeClient,
) -> None:
    client = make_client()
    gone = asyncio.Event()

    async def answer_until_gone(peer: Peer) -> None:
        while await peer.request() is not None:
            await peer.send(OK)
        gone.set()

    async with RawServer(answer_until_gone) as server:
        await client.get(server.url)
        await client.aclose()
        await happened(gone)
