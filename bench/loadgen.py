"""The load generator: closed-loop HTTP/1.1 clients on raw asyncio connections, in one process.

Each of `--clients` keep-alive connections (spread round-robin over `--url`'s port and every
`--also-port`, for replicas) sends a chat completion request, waits for the whole
answer, and sends the next, until `--duration` seconds (after `--warmup`) have passed or
`--requests` have been sent. Answers are parsed only as far as HTTP framing needs
(Content-Length or chunked); for streams the time to first token is when the upstream's first
word (`bench.upstream.FIRST_WORD`) first arrives. It prints one JSON summary (throughput,
status counts, latency and time-to-first-token percentiles, 200s per time window, its own CPU
seconds). The same generator drives the runtime and, for the baseline, the upstream directly.
Run by the runtime suite as `python -m bench.loadgen ...`; network I/O on loopback.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import gc
import json
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from bench import stats, upstream

HEAD_END = b"\r\n\r\n"
CRLF = b"\r\n"
MARKER = upstream.FIRST_WORD.encode()


class ResponseParser:
    """Incremental HTTP/1.1 response framing: feed bytes, learn when one answer is complete."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.status = 0
        self._body_at = -1
        self._length = -1
        self._chunked = False
        self._pos = 0

    def feed(self, data: bytes) -> bool:
        """Add bytes; True once the whole response (head and body) has arrived."""
        self.buffer += data
        if self._body_at < 0 and not self._parse_head():
            return False
        if self._chunked:
            return self._chunks_complete()
        return len(self.buffer) - self._body_at >= self._length

    def body(self) -> bytes:
        return bytes(self.buffer[self._body_at :]) if self._body_at >= 0 else b""

    def _parse_head(self) -> bool:
        end = self.buffer.find(HEAD_END)
        if end < 0:
            return False
        lines = bytes(self.buffer[:end]).split(CRLF)
        self.status = int(lines[0].split(b" ", 2)[1])
        self._length = 0
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                self._length = int(value.strip())
            elif name == b"transfer-encoding" and b"chunked" in value.lower():
                self._chunked = True
        self._body_at = self._pos = end + len(HEAD_END)
        return True

    def _chunks_complete(self) -> bool:
        buffer = self.buffer
        while True:
            line_end = buffer.find(CRLF, self._pos)
            if line_end < 0:
                return False
            size = int(bytes(buffer[self._pos : line_end]).split(b";")[0], 16)
            if size == 0:
                return len(buffer) >= line_end + 4
            after = line_end + 2 + size + 2
            if len(buffer) < after:
                return False
            self._pos = after


class Connection(asyncio.Protocol):
    """One keep-alive connection carrying one request at a time."""

    def __init__(self, watch_marker: bool) -> None:
        self._watch = watch_marker
        self._transport: asyncio.Transport | None = None
        self._parser = ResponseParser()
        self._done: asyncio.Future[int] | None = None
        self.first_token = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def send(self, request: bytes) -> asyncio.Future[int]:
        assert self._transport is not None
        self._parser = ResponseParser()
        self.first_token = 0.0
        self._done = asyncio.get_running_loop().create_future()
        self._transport.write(request)
        return self._done

    def data_received(self, data: bytes) -> None:
        parser = self._parser
        scanned = max(0, len(parser.buffer) - len(MARKER))
        complete = parser.feed(data)
        if self._watch and not self.first_token and MARKER in parser.buffer[scanned:]:
            self.first_token = time.perf_counter()
        if complete and self._done is not None and not self._done.done():
            self._done.set_result(parser.status)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._done is not None and not self._done.done():
            self._done.set_exception(ConnectionError(f"connection lost: {exc}"))

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()


@dataclass(frozen=True)
class Plan:
    """What to send and for how long."""

    host: str
    port: int
    path: str
    clients: int
    model: str
    stream: bool = False
    duration: float = 0.0
    warmup: float = 0.0
    requests: int = 0
    windows: int = 1
    session_prefix: str | None = None
    until_status: int = 0
    # More servers of the same path (replicas): client i talks to (port, *more_ports)[i % n].
    more_ports: tuple[int, ...] = ()


@dataclass
class Tally:
    """What the measured window saw."""

    latencies: list[float] = field(default_factory=list)
    first_tokens: list[float] = field(default_factory=list)
    statuses: collections.Counter[int] = field(default_factory=collections.Counter)
    completions_ok: list[float] = field(default_factory=list)
    errors: int = 0
    issued: int = 0
    completed: int = 0
    stop: bool = False


def request_bytes(plan: Plan, session: str | None) -> bytes:
    body: dict[str, Any] = {
        "model": plan.model,
        "messages": [{"role": "user", "content": "Hello, how are you today?"}],
    }
    if plan.stream:
        body["stream"] = True
    payload = json.dumps(body, separators=(",", ":")).encode()
    head = (
        f"POST {plan.path} HTTP/1.1\r\nhost: {plan.host}:{plan.port}\r\n"
        f"content-type: application/json\r\ncontent-length: {len(payload)}\r\n"
    )
    if session is not None:
        head += f"x-session-id: {session}\r\n"
    return head.encode() + CRLF + payload


async def run(plan: Plan) -> dict[str, Any]:
    """Drive the plan; the summary as a JSON-ready dict."""
    loop = asyncio.get_running_loop()
    tally = Tally()
    fixed = request_bytes(plan, None) if plan.session_prefix is None else b""
    begin = time.perf_counter()
    start = begin + plan.warmup
    deadline = start + plan.duration if plan.duration else float("inf")

    ports = (plan.port, *plan.more_ports)

    async def client(index: int) -> None:
        port = ports[index % len(ports)]
        _, conn = await loop.create_connection(lambda: Connection(plan.stream), plan.host, port)
        try:
            while True:
                if tally.stop or (plan.requests and tally.issued >= plan.requests):
                    return
                sent = time.perf_counter()
                if sent >= deadline:
                    return
                tally.issued += 1
                request = fixed
                if plan.session_prefix is not None:
                    request = request_bytes(plan, f"{plan.session_prefix}-{tally.issued}")
                try:
                    status = await conn.send(request)
                except ConnectionError:
                    tally.errors += 1
                    conn.close()
                    _, conn = await loop.create_connection(
                        lambda: Connection(plan.stream), plan.host, port
                    )
                    continue
                done = time.perf_counter()
                tally.completed += 1
                if status == plan.until_status:
                    tally.stop = True
                if start <= done <= deadline:
                    tally.latencies.append(done - sent)
                    tally.statuses[status] += 1
                    if status == 200:
                        tally.completions_ok.append(done)
                    if conn.first_token:
                        tally.first_tokens.append(conn.first_token - sent)
        finally:
            conn.close()

    gc.disable()
    cpu_before = os.times()
    await asyncio.gather(*(client(index) for index in range(plan.clients)))
    ended = time.perf_counter()
    cpu_after = os.times()
    gc.enable()
    measured = plan.duration if plan.duration else ended - start
    cpu = _cpu(cpu_after) - _cpu(cpu_before)
    return {**summary(plan, tally, start, measured, cpu), "elapsed_s": ended - begin}


def _cpu(times: os.times_result) -> float:
    return times.user + times.system


def summary(
    plan: Plan, tally: Tally, start: float, measured: float, cpu_seconds: float
) -> dict[str, Any]:
    """The JSON summary of one run (times in milliseconds, throughput per second)."""
    count = sum(tally.statuses.values())
    width = measured / plan.windows
    windows = [0] * plan.windows
    for done in tally.completions_ok:
        windows[min(plan.windows - 1, int((done - start) / width))] += 1
    return {
        "clients": plan.clients,
        "stream": plan.stream,
        "duration_s": measured,
        "requests": count,
        "throughput": count / measured if measured > 0 else 0.0,
        "statuses": {str(code): n for code, n in sorted(tally.statuses.items())},
        "errors": tally.errors,
        "completed_total": tally.completed,
        "latency_ms": percentiles(tally.latencies),
        "ttft_ms": percentiles(tally.first_tokens) if plan.stream else None,
        "windows_ok": windows,
        "cpu_s": cpu_seconds,
    }


def percentiles(seconds: list[float]) -> dict[str, float]:
    millis = [s * 1000 for s in seconds]
    return {
        "p50": stats.percentile(millis, 50),
        "p90": stats.percentile(millis, 90),
        "p99": stats.percentile(millis, 99),
        "max": max(millis, default=float("nan")),
    }


def parse(argv: list[str] | None = None) -> Plan:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="http://host:port/path to POST to")
    parser.add_argument(
        "--also-port", type=int, action="append", default=[], help="another replica's port"
    )
    parser.add_argument("--clients", type=int, default=1)
    parser.add_argument("--model", default=upstream.MODEL)
    parser.add_argument("--stream", action="store_true")
    parser.add_argument("--duration", type=float, default=0.0, help="measured seconds")
    parser.add_argument("--warmup", type=float, default=0.0, help="unmeasured seconds first")
    parser.add_argument("--requests", type=int, default=0, help="stop after this many")
    parser.add_argument("--windows", type=int, default=1, help="count 200s per time slice")
    parser.add_argument("--session-prefix", default=None, help="unique x-session-id per request")
    parser.add_argument("--until-status", type=int, default=0, help="stop once one answer has it")
    args = parser.parse_args(argv)
    if bool(args.duration) == bool(args.requests):
        parser.error("give exactly one of --duration and --requests")
    url = urlsplit(args.url)
    if url.hostname is None or url.port is None:
        parser.error("--url needs an explicit host and port")
    return Plan(
        host=url.hostname,
        port=url.port,
        path=url.path or "/",
        clients=args.clients,
        model=args.model,
        stream=args.stream,
        duration=args.duration,
        warmup=args.warmup,
        requests=args.requests,
        windows=args.windows,
        session_prefix=args.session_prefix,
        until_status=args.until_status,
        more_ports=tuple(args.also_port),
    )


def main() -> None:
    result = asyncio.run(run(parse()))
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
