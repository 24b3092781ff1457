"""A counting proxy in front of the API server: every request one client makes, by verb.

The benchmark points the operator (or kubectl, for the baseline) at a kubeconfig whose server
is this proxy on plain loopback HTTP; the proxy opens a TLS connection per client connection
to the real API server with the cluster's admin client certificate, drops the placeholder
bearer token, and forwards the bytes both ways untouched. It parses only request heads (and
bodies by Content-Length or chunked framing), so it sees every request, Kopf's own included,
without changing any. `Proxy.count(since, until)` gives the requests in a time window by verb.
Runs its own event loop in a daemon thread. Used by `operator_suite`; network I/O on loopback.
"""

from __future__ import annotations

import asyncio
import collections
import ssl
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import yaml

WRITES = frozenset({"create", "update", "patch", "delete"})
VERBS = {b"POST": "create", b"PUT": "update", b"PATCH": "patch", b"DELETE": "delete"}
TOKEN = "bench-proxy-placeholder"


def verb(method: bytes, target: bytes) -> str:
    """Kubernetes' verb for a request: watch, read (get/list/discovery) or a write."""
    if method == b"GET":
        query = target.partition(b"?")[2]
        return "watch" if b"watch=1" in query or b"watch=true" in query else "read"
    return VERBS.get(method, method.decode(errors="replace").lower())


@dataclass(frozen=True)
class Seen:
    at: float
    verb: str
    path: str


class Proxy:
    """Start with `start()`, point clients at `kubeconfig()`, `stop()` when done."""

    def __init__(self, server: str, tls: ssl.SSLContext) -> None:
        url = urlsplit(server)
        if url.hostname is None or url.port is None:
            raise ValueError(f"the API server URL {server!r} needs a host and a port")
        self._host, self._port = url.hostname, url.port
        self._tls = tls
        self.seen: list[Seen] = []
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.Server | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def start(self) -> None:
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(self._listen(), self._loop)
        self.port = future.result(timeout=30)

    def stop(self) -> None:
        async def close() -> None:
            if self._server is not None:
                self._server.close()
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(timeout=30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=30)

    def kubeconfig(self, path: Path) -> Path:
        """Write a kubeconfig that sends a client through this proxy; its path."""
        doc = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "bench", "cluster": {"server": f"http://127.0.0.1:{self.port}"}}],
            "users": [{"name": "bench", "user": {"token": TOKEN}}],
            "contexts": [{"name": "bench", "context": {"cluster": "bench", "user": "bench"}}],
            "current-context": "bench",
        }
        path.write_text(yaml.safe_dump(doc))
        return path

    def count(self, since: float = 0.0, until: float = float("inf")) -> collections.Counter[str]:
        """Requests seen in [since, until) (time.monotonic()), by verb."""
        return collections.Counter(s.verb for s in list(self.seen) if since <= s.at < until)

    @staticmethod
    def writes(counts: collections.Counter[str]) -> int:
        return sum(n for v, n in counts.items() if v in WRITES)

    async def _listen(self) -> int:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", 0, backlog=512)
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(
                self._host, self._port, ssl=self._tls, server_hostname=self._host
            )
        except OSError:
            writer.close()
            return
        back = asyncio.ensure_future(_pump(up_reader, writer))
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                up_writer.write(self._forward_head(head))
                await _copy_body(head, reader, up_writer)
                await up_writer.drain()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass
        finally:
            back.cancel()
            for each in (writer, up_writer):
                each.close()

    def _forward_head(self, head: bytes) -> bytes:
        lines = head[:-4].split(b"\r\n")
        method, target, _ = lines[0].split(b" ", 2)
        self.seen.append(Seen(time.monotonic(), verb(method, target), target.decode()))
        kept = [line for line in lines[1:] if not line.lower().startswith(b"authorization:")]
        return b"\r\n".join([lines[0], *kept]) + b"\r\n\r\n"


def _header(head: bytes, name: bytes) -> bytes | None:
    for line in head.split(b"\r\n")[1:]:
        key, _, value = line.partition(b":")
        if key.strip().lower() == name:
            return value.strip()
    return None


async def _copy_body(
    head: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    length = _header(head, b"content-length")
    if length is not None:
        writer.write(await reader.readexactly(int(length)))
        return
    if (_header(head, b"transfer-encoding") or b"").lower() != b"chunked":
        return
    while True:
        size_line = await reader.readuntil(b"\r\n")
        writer.write(size_line)
        size = int(size_line.split(b";")[0], 16)
        writer.write(await reader.readexactly(size + 2))
        if size == 0:
            return


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while chunk := await reader.read(65536):
            writer.write(chunk)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        writer.close()
