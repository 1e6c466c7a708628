"""A real MCP server (the ``mcp`` SDK's ``MCPServer``) over Streamable HTTP on 127.0.0.1, in
the test's event loop, with tools that answer, hang, fail and flood."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field

import uvicorn
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from starlette.types import Receive, Scope, Send


@dataclass
class ToolServer:
    """What the tools saw: the request headers of each ``echo``, and the ``slow`` call's fate."""

    headers: list[dict[str, str]] = field(default_factory=list)
    requests: int = 0  # HTTP requests the server received (connecting, listing, calls, closing)
    slow_started: asyncio.Event = field(default_factory=asyncio.Event)
    slow_cancelled: asyncio.Event = field(default_factory=asyncio.Event)

    def build(self) -> MCPServer:
        server = MCPServer("agentstream-tests")

        @server.tool()
        async def echo(text: str, ctx: Context) -> str:
            """Say the text back."""
            self.headers.append({k.lower(): v for k, v in (ctx.headers or {}).items()})
            return f"echo: {text}"

        @server.tool()
        async def slow() -> str:
            """Never answers: ends only when the call is cancelled."""
            self.slow_started.set()
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                self.slow_cancelled.set()
                raise
            return "unreachable"

        @server.tool()
        async def fail() -> str:
            """Always fails."""
            raise ToolError("the tool broke")

        @server.tool()
        async def large(size: int) -> str:
            """``size`` characters of text."""
            return "x" * size

        return server


@asynccontextmanager
async def serve_mcp(tools: ToolServer) -> AsyncIterator[str]:
    """Serve ``tools`` on 127.0.0.1; yields the MCP endpoint's URL."""
    mcp_app = tools.build().streamable_http_app()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            tools.requests += 1
        await mcp_app(scope, receive, send)

    # IPPROTO_TCP named, so asyncio sets TCP_NODELAY on the accepted connections (it checks
    # the protocol number); without it every response waits ~40 ms for a delayed ACK.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, lifespan="on", log_config=None, log_level="warning")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            await task  # raises what stopped it
        await asyncio.sleep(0.01)  # polling server start-up, not test synchronisation
    try:
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        server.should_exit = True
        await task
        sock.close()


@contextmanager
def refused_url() -> Iterator[str]:
    """An MCP URL on 127.0.0.1 where nothing listens (a bound, never-listening port refuses)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/mcp"
    finally:
        sock.close()


@contextmanager
def silent_url() -> Iterator[str]:
    """An MCP URL on 127.0.0.1 that accepts connections and never answers (the kernel
    completes the handshake on a listening socket that nobody accepts from)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/mcp"
    finally:
        sock.close()
