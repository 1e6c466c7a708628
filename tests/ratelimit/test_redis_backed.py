"""The server with AGENTSTREAM_REDIS_URL: limits shared through real Redis; Redis down → open."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx

from agentstream.app import build_state, create_app
from tests.conftest import make_settings
from tests.factories import register


def _random_ip() -> str:
    # A fresh client address per test keeps Redis windows of earlier runs out of the way.
    return f"10.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}.1"


@asynccontextmanager
async def _worker(
    database_url: str, tmp_path: Path, redis_url: str, client_ip: str, **overrides: object
) -> AsyncIterator[httpx.AsyncClient]:
    """One server worker (its own app state and limiter) with a client at ``client_ip``."""
    settings = make_settings(database_url, tmp_path, redis_url=redis_url, **overrides)
    async with build_state(settings) as state:
        app = create_app(settings)
        app.state.agentstream = state
        transport = httpx.ASGITransport(app=app, client=(client_ip, 1234))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client


async def test_two_workers_share_the_auth_window_through_redis(
    database_url: str, tmp_path: Path, redis_url: str
) -> None:
    ip = _random_ip()
    async with (
        _worker(database_url, tmp_path, redis_url, ip, rate_limit_auth=2) as a,
        _worker(database_url, tmp_path, redis_url, ip, rate_limit_auth=2) as b,
    ):
        await register(a)
        await register(b)
        # The third attempt from this address is over the shared window of 2 on either worker.
        blocked = await b.post(
            "/v1/auth/register", json={"email": "x@example.com", "password": "12345678"}
        )
        assert blocked.status_code == 429
        assert (await a.get("/ready")).json()["redis"] == "ok"


async def test_redis_down_fails_open_and_ready_reports_it(
    database_url: str, tmp_path: Path
) -> None:
    async with _worker(
        database_url,
        tmp_path,
        "redis://127.0.0.1:1/0",
        _random_ip(),
        rate_limit_auth=1,
        rate_limit_api=1,
    ) as client:
        await register(client)
        account = await register(client)  # over the limit of 1, but Redis is down: allowed
        assert (await client.get("/v1/agents", headers=account.headers)).status_code == 200
        assert (await client.get("/v1/agents", headers=account.headers)).status_code == 200
        ready = await client.get("/ready")
        assert ready.status_code == 200
        assert ready.json() == {"status": "degraded", "database": "ok", "redis": "down"}
