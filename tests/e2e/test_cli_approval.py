"""``agentstream chat`` asks y/n for a tool call that needs approval, then streams on."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator

import httpx
import pytest

from tests.e2e.server import ServerProcess
from tests.e2e.test_node_approvals import _guarded_agent
from tests.fakes.mcp_server import ToolServer, serve_mcp
from tests.fakes.openai_server import FakeOpenAI

pytestmark = pytest.mark.e2e


@pytest.fixture
async def mcp_url() -> AsyncIterator[tuple[str, ToolServer]]:
    tools = ToolServer()
    async with serve_mcp(tools) as url:
        yield url, tools


@pytest.mark.parametrize("answer", ["y", "n"])
async def test_chat_asks_yes_or_no_and_the_reply_goes_on(
    answer: str,
    server: ServerProcess,
    http: httpx.AsyncClient,
    upstream: FakeOpenAI,
    mcp_url: tuple[str, ToolServer],
) -> None:
    url, tools = mcp_url
    owner, slug = await _guarded_agent(http, upstream, url)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "agentstream",
        "chat",
        slug,
        "--url",
        server.url,
        "--token",
        owner.access_token,
        "-m",
        "say hi",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "COLUMNS": "200"},
    )
    raw, _ = await asyncio.wait_for(process.communicate(f"{answer}\n".encode()), 60)
    output = raw.decode()
    assert process.returncode == 0, output
    assert 'Allow srv__echo({"text":"hi"})? [y/N]' in output
    assert "Done." in output
    assert len(tools.headers) == (1 if answer == "y" else 0)
    conversations = (
        await http.get(f"/v1/conversations?agent={slug}", headers=owner.headers)
    ).json()["items"]
    shown = (
        await http.get(f"/v1/conversations/{conversations[0]['id']}", headers=owner.headers)
    ).json()
    assert shown["approvals"][0]["approved"] is (answer == "y")
