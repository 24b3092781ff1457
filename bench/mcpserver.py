"""The MCP server of the MCP benchmark: FastMCP (the official `mcp` SDK) on streamable HTTP,
one small read-only tool. `python bench/mcpserver.py PORT`; run by `bench.mcp_suite`."""

from __future__ import annotations

import sys

import uvicorn
from mcp.server.fastmcp import FastMCP
from mcp.types import ToolAnnotations


def main(port: int) -> None:
    server = FastMCP("bench", log_level="WARNING")

    @server.tool(annotations=ToolAnnotations(readOnlyHint=True))
    def lookup_order(order_id: str) -> str:
        """Look up an order by its id."""
        return f"order {order_id}: shipped"

    uvicorn.run(server.streamable_http_app(), host="127.0.0.1", port=port, log_level="warning")


if __name__ == "__main__":
    main(int(sys.argv[1]))
