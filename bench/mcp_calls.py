"""The cost of an MCP tool call: agentstream's per-run path against pydantic-ai's own.

A local MCP server (``bench/mcp_server.py``: Streamable HTTP, ``echo`` tool) runs in a
process of its own, so the CPU measured here is the client's alone. Three ways to call it:

- ``bare, open session``: pydantic-ai's ``MCPToolset`` entered once, each call through a
  ``ToolManager`` (an agent kept entered with ``async with agent``);
- ``bare, per run``: a fresh ``MCPToolset`` per run, connected, called once and closed (what
  ``Agent.run`` does with a toolset that is not entered beforehand);
- ``agentstream, per run``: what a chat run does: the run's guarded, prefixed toolset from
  ``mcp_servers.toolsets`` (tools from this worker's kept listing), connected at the call,
  closed with the run.

Run: ``python -m bench.mcp_calls``.
"""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable


async def _measure(label: str, call: Callable[[], Awaitable[None]], count: int) -> None:
    await call()  # warm
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(count):
        await call()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(
        f"{label:<24} {count / wall:8.1f} calls/s   {cpu / count * 1e3:6.2f} ms client CPU per call"
    )


async def _main(url: str, count: int) -> None:
    from pydantic_ai import RunContext
    from pydantic_ai.mcp import MCPToolset
    from pydantic_ai.messages import ToolCallPart
    from pydantic_ai.models.test import TestModel
    from pydantic_ai.tool_manager import ToolManager
    from pydantic_ai.usage import RunUsage

    from agentstream.mcp_servers.toolsets import McpServerConfig, ToolListings, server_toolset

    ctx = RunContext[None](deps=None, model=TestModel(), usage=RunUsage(), max_retries=1)
    args = {"text": "hello"}

    bare = MCPToolset[None](url)
    async with bare:
        tools = await ToolManager[None](bare).for_run_step(ctx)

        async def open_session() -> None:
            await tools.handle_call(ToolCallPart("echo", args, "call"))

        await _measure("bare, open session", open_session, count)

    async def bare_run() -> None:
        toolset = MCPToolset[None](url)
        async with toolset:
            manager = await ToolManager[None](toolset).for_run_step(ctx)
            await manager.handle_call(ToolCallPart("echo", args, "call"))

    await _measure("bare, per run", bare_run, max(count // 5, 10))

    listings = ToolListings()
    server = McpServerConfig("bench", url, "never")

    async def agentstream_run() -> None:
        toolset = server_toolset(server, 30.0, listings)
        async with toolset:
            manager = await ToolManager[None](toolset).for_run_step(ctx)
            await manager.handle_call(ToolCallPart("bench__echo", args, "call"))

    await _measure("agentstream, per run", agentstream_run, max(count // 5, 10))


def main(count: int = 200) -> None:
    logging.disable(logging.WARNING)
    server = subprocess.Popen(
        [sys.executable, "-m", "bench.mcp_server"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert server.stdout is not None
        url = server.stdout.readline().strip()
        asyncio.run(_main(url, count))
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
