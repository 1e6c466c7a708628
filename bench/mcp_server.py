"""The bench's MCP server: the ``mcp`` SDK's ``MCPServer`` over Streamable HTTP on 127.0.0.1
with one tool, ``echo``, in a process of its own (so a client's measured CPU is the client's).
Prints its endpoint's URL on the first line of stdout.

Run: ``python -m bench.mcp_server --port 0``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import socket

import uvicorn
from mcp.server.mcpserver import MCPServer


def build() -> MCPServer:
    server = MCPServer("bench")

    @server.tool()
    async def echo(text: str) -> str:
        """Say the text back."""
        return text

    return server


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    # IPPROTO_TCP named, so asyncio sets TCP_NODELAY on accepted connections (without it each
    # response can wait ~40 ms for a delayed ACK).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", args.port))
    sock.listen(128)  # connections queue until uvicorn serves them
    print(f"http://127.0.0.1:{sock.getsockname()[1]}/mcp", flush=True)
    app = build().streamable_http_app()
    config = uvicorn.Config(app, log_config=None, log_level="warning")
    asyncio.run(uvicorn.Server(config).serve(sockets=[sock]))


if __name__ == "__main__":
    main()
