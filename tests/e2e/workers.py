"""Two worker processes (``serve --workers 2``, PostgreSQL + Redis), and clients pinned to each."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterator

import httpx

from tests.e2e.server import ServerProcess
from tests.fakes.openai_server import FakeOpenAI


@contextlib.contextmanager
def two_workers(
    database_url: str, redis_url: str, upstream: FakeOpenAI, **env: str
) -> Iterator[ServerProcess]:
    """``serve --workers 2`` sharing the database and Redis, models on ``upstream``; ``env``
    adds or overrides settings."""
    process = ServerProcess(
        {
            "AGENTSTREAM_DATABASE_URL": database_url,
            "AGENTSTREAM_REDIS_URL": redis_url,
            "AGENTSTREAM_REDIS_TIMEOUT_S": "2",  # a busy test machine is slow, not down
            "AGENTSTREAM_WORKERS": "2",
            "OPENAI_BASE_URL": upstream.base_url,
            "OPENAI_API_KEY": "test-key",
            **env,
        }
    )
    process.start()
    try:
        yield process
    finally:
        process.stop()


@contextlib.asynccontextmanager
async def pinned_clients(
    url: str, request_timeout_s: float = 30
) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    """Two clients, each on one kept-alive connection, answered by different workers (the
    second worker may still be starting: keep opening connections, bounded). Use them at once:
    a connection left idle is closed by the server, and reopened to either worker."""
    async with contextlib.AsyncExitStack() as stack:
        by_pid: dict[int, httpx.AsyncClient] = {}
        deadline = time.monotonic() + 60
        while len(by_pid) < 2:
            assert time.monotonic() < deadline, "every connection was answered by one worker"
            client = httpx.AsyncClient(
                base_url=url, timeout=request_timeout_s, limits=httpx.Limits(max_connections=1)
            )
            pid = (await client.get("/health")).json()["pid"]
            if pid in by_pid:
                await client.aclose()
                await asyncio.sleep(0.05)  # polling worker start-up, not test synchronisation
                continue
            stack.push_async_callback(client.aclose)
            by_pid[pid] = client
        first, second = by_pid.values()
        yield first, second
