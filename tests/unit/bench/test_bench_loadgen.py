"""The load generator's HTTP framing and the fake upstream's wire format."""

from __future__ import annotations

import json

from bench import loadgen, upstream


def test_a_response_with_content_length_completes_only_when_its_body_has_arrived() -> None:
    parser = loadgen.ResponseParser()
    assert not parser.feed(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n")
    assert not parser.feed(b"\r\nhel")
    assert parser.feed(b"lo")
    assert parser.status == 200
    assert parser.body() == b"hello"


def test_a_chunked_response_completes_at_the_zero_chunk_even_when_split_anywhere() -> None:
    whole = (
        b"HTTP/1.1 429 Too Many Requests\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\n\r\n"
    )
    for cut in range(1, len(whole)):
        parser = loadgen.ResponseParser()
        first = parser.feed(whole[:cut])
        assert not first, f"complete too early at byte {cut}"
        assert parser.feed(whole[cut:]), f"incomplete when split at byte {cut}"
        assert parser.status == 429


def test_the_upstreams_stream_is_the_chunked_sse_an_openai_client_expects() -> None:
    events = upstream.stream_events(3)
    assert events[-1] == b"data: [DONE]\n\n"
    chunks = [json.loads(e.removeprefix(b"data: ")) for e in events[:-1]]
    words = [c["choices"][0]["delta"].get("content") for c in chunks[:3]]
    assert words[0] == upstream.FIRST_WORD
    assert len(words) == 3
    assert chunks[3]["choices"][0]["finish_reason"] == "stop"
    assert chunks[4]["choices"] == []
    assert chunks[4]["usage"]["completion_tokens"] == 3


def test_the_upstream_reads_a_request_body_by_its_content_length_header() -> None:
    head = b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 42"
    assert upstream.content_length(head) == 42
    assert upstream.content_length(b"GET / HTTP/1.1\r\nHost: x") == 0


def test_a_session_run_sends_its_session_id_in_every_request() -> None:
    plan = loadgen.Plan(host="127.0.0.1", port=80, path="/v1/x", clients=1, model="m")
    request = loadgen.request_bytes(plan, "s-7")
    head, _, body = request.partition(b"\r\n\r\n")
    assert b"x-session-id: s-7" in head
    assert int(upstream.content_length(head)) == len(body)
    assert json.loads(body)["model"] == "m"
