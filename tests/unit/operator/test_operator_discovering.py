"""Discovery against real MCP servers (FastMCP processes on loopback, both transports): the
tools listed, and each way a server can fail named by its reason."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from corral.api.mcpservers import MCPServerSpec
from corral.operator import discovering
from fakes.mcp_server import MCPServerProcess, SilentServers


@pytest.fixture(scope="module", params=["streamable-http", "sse"])
def server(request: pytest.FixtureRequest) -> Iterator[MCPServerProcess]:
    options = ("--transport", "sse") if request.param == "sse" else ()
    with MCPServerProcess(None, *options, "--require", "X-Team=support") as running:
        yield running


def spec(url: str, **fields: object) -> MCPServerSpec:
    return MCPServerSpec.model_validate({"url": url, **fields})


@pytest.mark.anyio
async def test_discovery_lists_the_tools_with_the_headers_given(server: MCPServerProcess) -> None:
    transport = "sse" if "sse" in server.options else "streamable-http"
    found = await discovering.discover(spec(server.url, transport=transport), {"X-Team": "support"})
    assert found.ok, found.message
    assert {"lookup_order", "header_digest", "big"} <= {t.name for t in found.tools or ()}


@pytest.mark.anyio
async def test_a_refused_header_is_auth_failed(server: MCPServerProcess) -> None:
    transport = "sse" if "sse" in server.options else "streamable-http"
    found = await discovering.discover(spec(server.url, transport=transport), {"X-Team": "x"})
    assert (found.reason, found.message) == (
        "AuthFailed",
        "the server answered HTTP 401: check headers and headersFrom",
    )


@pytest.mark.anyio
async def test_a_wrong_path_is_a_failed_handshake_naming_the_status(
    server: MCPServerProcess,
) -> None:
    url = server.url.rsplit("/", 1)[0] + "/not-mcp"
    found = await discovering.discover(spec(url), {"X-Team": "support"})
    assert (found.reason, found.message) == ("HandshakeFailed", "the server answered HTTP 404")


@pytest.mark.anyio
async def test_nothing_listening_is_unreachable() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    found = await discovering.discover(spec(f"http://127.0.0.1:{port}/mcp"), {})
    assert found.reason == "Unreachable"


@pytest.mark.anyio
async def test_a_handshake_never_answered_is_unreachable_after_the_timeout() -> None:
    with SilentServers(1) as silent:
        found = await discovering.discover(spec(silent.urls[0], timeoutSeconds=1), {})
    assert (found.reason, found.message) == (
        "Unreachable",
        "no answer to the MCP handshake within 1s",
    )
