"""MCP fixtures: a real MCP server on 127.0.0.1, allowed hosts, an owner and helpers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.factories import Account
from tests.fakes.mcp_server import ToolServer, serve_mcp
from tests.streaming.conftest import owner  # noqa: F401 (fixture)


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    return {
        "mcp_allowed_hosts": ["127.0.0.1", "*.example.com"],
        "mcp_timeout_s": 5.0,
        "memory_extraction": False,  # the scripted models only stream
    }


@pytest.fixture
def tools() -> ToolServer:
    return ToolServer()


@pytest.fixture
async def mcp_url(tools: ToolServer) -> AsyncIterator[str]:
    async with serve_mcp(tools) as url:
        yield url


async def register_server(
    client: httpx.AsyncClient, account: Account, name: str, url: str, **fields: Any
) -> dict[str, Any]:
    """Register an MCP server in the account's team."""
    body = {"name": name, "url": url} | fields
    response = await client.post("/v1/mcp-servers", json=body, headers=account.headers)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result
