"""An MCP server written with the official `mcp` SDK's FastMCP, run as a real process.

    python tests/fakes/mcp_server.py --port 8931 [--transport sse] [--require HEADER=VALUE]

Tools: `lookup_order` (read-only: a resend is harmless; with `hold` and `--hold-file F` the
first such call creates F and never answers, for killing the server under it),
`header_digest` (SHA-256 of the request header named by its argument), `trace_parent` (the
`traceparent` of the call's `_meta`), `big` (a text of `size` characters), `fail` (an
`isError` result), `slow` (sleeps), `add_tool` (registers `extra_tool` and tells clients
`tools/list_changed`), `tally` (not read-only: how many times it ran for its key, so a
resend shows). With `--require H=V` every request without header H = V is answered 401.
Over streamable HTTP, `POST /forget-sessions` makes the server forget every session it
knows while their streams stay open, as a server that lost its session table (or a replica
behind a load balancer that never had it) does: each session's next request is answered
404 "Session not found" by the SDK itself; the answer is how many were forgotten.
`MCPServerProcess` starts it as a child (hack/childproc) and waits until it accepts
connections; tests kill and restart it on the same port. `SilentServers` accept connections
and never answer. Network I/O on loopback.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import socket
import sys
import threading
from pathlib import Path
from typing import Any

from mcp.server.fastmcp import Context, FastMCP
from mcp.types import ToolAnnotations

HERE = Path(__file__).resolve().parent


def build(name: str, port: int, hold_file: Path | None = None) -> FastMCP:  # type: ignore[type-arg]
    server = FastMCP(name, host="127.0.0.1", port=port, log_level="WARNING")

    @server.tool(annotations=ToolAnnotations(readOnlyHint=True))
    async def lookup_order(order_id: str, hold: bool = False) -> str:
        """Look up an order by its id."""
        if hold and _first_hold(hold_file):
            await asyncio.sleep(3600)  # the test kills this server now: the call is in flight
        return f"order {order_id}: shipped"

    @server.tool()
    def header_digest(header: str, ctx: Context) -> str:  # type: ignore[type-arg]
        """SHA-256 of one request header's value as the server received it (never the value:
        the tests look for it in every log line)."""
        request = ctx.request_context.request
        value = "" if request is None else str(request.headers.get(header, ""))
        return hashlib.sha256(value.encode()).hexdigest()

    @server.tool()
    def trace_parent(ctx: Context) -> str:  # type: ignore[type-arg]
        """The `traceparent` the call carried in its `_meta` ("" without one)."""
        meta = ctx.request_context.meta
        return str(getattr(meta, "traceparent", "") or "") if meta is not None else ""

    @server.tool()
    def big(size: int) -> str:
        """A text of `size` characters."""
        return "x" * size

    @server.tool()
    def fail() -> str:
        """Always fails."""
        raise ValueError("the warehouse is on fire")

    @server.tool()
    async def slow(seconds: float) -> str:
        """Answer after `seconds`."""
        await asyncio.sleep(seconds)
        return "done"

    tallies: dict[str, int] = {}

    @server.tool()
    def tally(key: str) -> str:
        """Count a run for `key`; answers `key: runs so far`."""
        tallies[key] = tallies.get(key, 0) + 1
        return f"{key}: {tallies[key]}"

    @server.tool()
    async def add_tool(ctx: Context) -> str:  # type: ignore[type-arg]
        """Add `extra_tool` and tell the client its tool list changed."""

        def extra_tool() -> str:
            """Appears after add_tool."""
            return "extra"

        server.add_tool(extra_tool)
        await ctx.session.send_tool_list_changed()
        return "added"

    return server


def _first_hold(hold_file: Path | None) -> bool:
    """Whether this is the first held call (it creates `hold_file` for the test to see)."""
    if hold_file is None or hold_file.exists():
        return False
    hold_file.touch()
    return True


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--name", default="orders")
    transports = ["streamable-http", "sse"]
    parser.add_argument("--transport", choices=transports, default=transports[0])
    parser.add_argument("--require", default=None, help="HEADER=VALUE every request must carry")
    parser.add_argument("--hold-file", type=Path, default=None, help="see lookup_order(hold)")
    args = parser.parse_args(argv)

    import uvicorn

    server = build(args.name, args.port, args.hold_file)
    if args.transport == "sse":
        app = server.sse_app()
    else:
        app = _forgetting(server.streamable_http_app(), server)
    if args.require:
        header, value = args.require.split("=", 1)
        app = _requiring(app, header.lower().encode(), value.encode())
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")


def _forgetting(app: Any, server: FastMCP) -> Any:  # type: ignore[type-arg]
    """`app` plus `POST /forget-sessions` (see the module's docstring). The session table is
    the SDK's private state: a test double reaches into it so that the 404 comes from the
    SDK's own request handling, as a real server's would."""

    async def forgetting(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] == "/forget-sessions":
            known = server.session_manager._server_instances
            forgotten = len(known)
            known.clear()
            body = str(forgotten).encode()
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": body})
            return
        await app(scope, receive, send)

    return forgetting


def _requiring(app: Any, header: bytes, value: bytes) -> Any:
    async def guarded(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and dict(scope["headers"]).get(header) != value:
            await send({"type": "http.response.start", "status": 401, "headers": []})
            await send({"type": "http.response.body", "body": b"unauthorized"})
            return
        await app(scope, receive, send)

    return guarded


class MCPServerProcess:
    """The server above as a child process on a fixed port, restartable."""

    def __init__(self, port: int | None = None, *options: str) -> None:
        from childproc import free_port

        self.port = port or free_port()
        self.options = options
        self.child: Any = None

    @property
    def url(self) -> str:
        path = "/sse" if "sse" in self.options else "/mcp"
        return f"http://127.0.0.1:{self.port}{path}"

    def forget_sessions(self) -> int:
        """Make the server forget its sessions (streamable HTTP); how many it knew."""
        import urllib.request

        url = f"http://127.0.0.1:{self.port}/forget-sessions"
        with urllib.request.urlopen(urllib.request.Request(url, method="POST"), timeout=10) as r:
            return int(r.read())

    def start(self) -> MCPServerProcess:
        from childproc import Child

        argv = [sys.executable, str(HERE / "mcp_server.py"), "--port", str(self.port)]
        self.child = Child(f"mcp server :{self.port}", [*argv, *self.options])
        self.child.wait_ready(self._accepting, 30, "accepting connections")
        return self

    def kill(self) -> None:
        """SIGKILL: no goodbye to the clients, in-flight calls cut."""
        self.child.kill()

    def stop(self) -> None:
        if self.child is not None:
            self.child.close()

    def _accepting(self) -> bool:
        with socket.socket() as probe:
            return probe.connect_ex(("127.0.0.1", self.port)) == 0

    def __enter__(self) -> MCPServerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class SilentServers:
    """`count` TCP servers on loopback that accept connections and never answer a byte: an
    MCP handshake that hangs. `urls` are their MCP endpoints."""

    def __init__(self, count: int = 1) -> None:
        self._listeners = []
        for _ in range(count):
            listener = socket.socket()
            listener.bind(("127.0.0.1", 0))
            listener.listen(64)
            listener.settimeout(0.1)
            self._listeners.append(listener)
        self._held: list[socket.socket] = []
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._accept, args=(li,), daemon=True) for li in self._listeners
        ]
        self.urls = [f"http://127.0.0.1:{li.getsockname()[1]}/mcp" for li in self._listeners]

    def _accept(self, listener: socket.socket) -> None:
        while not self._stop.is_set():
            try:
                self._held.append(listener.accept()[0])
            except TimeoutError:
                continue

    def __enter__(self) -> SilentServers:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()
        for sock in self._held + self._listeners:
            sock.close()


if __name__ == "__main__":
    main(sys.argv[1:])
