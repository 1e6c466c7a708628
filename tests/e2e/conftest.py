"""End-to-end fixtures: a real uvicorn process per database backend, and real clients."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from tests.e2e.server import ServerProcess
from tests.fakes.openai_server import FakeOpenAI


@pytest.fixture(scope="session")
def server(database_url: str, upstream: FakeOpenAI) -> Iterator[ServerProcess]:
    """``agentstream serve`` on the session's scratch database (SQLite or PostgreSQL)."""
    process = ServerProcess(
        {
            "AGENTSTREAM_DATABASE_URL": database_url,
            "AGENTSTREAM_DEMO_TOKEN_DELAY_MS": "2",
            "OPENAI_BASE_URL": upstream.base_url,
            "OPENAI_API_KEY": "test-key",
            # The approval tests' MCP server (tests/fakes/mcp_server.py) listens on 127.0.0.1.
            "AGENTSTREAM_MCP_ALLOWED_HOSTS": "127.0.0.1",
        }
    )
    process.start()
    yield process
    process.stop()


@pytest.fixture
async def http(server: ServerProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        yield client
