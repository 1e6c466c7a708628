"""A frozen Redis (SIGSTOP-like: sockets open, no bytes) costs one timeout, then nothing.

The server's Redis goes through a TCP proxy that the test freezes. The first request waits
out the short Redis timeout and opens the breaker; later requests skip Redis entirely (the
proxy sees no byte), succeed (the limiter fails open) and are fast. Once Redis answers
again and the cooldown has passed, the limit is enforced through Redis again.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from agentstream.app import build_state, create_app
from agentstream.kit.redis import RedisGuard
from agentstream.ratelimit.limiter import build_rate_limiter
from agentstream.state import AppState
from tests.conftest import make_settings, redis_via
from tests.factories import register
from tests.fakes.tcpproxy import TcpProxy

API_LIMIT = 5
COOLDOWN_S = 5.0


class Clock:
    """The guard's monotonic clock, moved by the test instead of waiting out the cooldown."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def server(
    database_url: str, tmp_path: Path, redis_proxy: TcpProxy, clock: Clock
) -> AsyncIterator[tuple[AppState, httpx.AsyncClient]]:
    """The app with Redis behind the proxy; its guard runs on the test's clock."""
    redis_url = redis_via(redis_proxy)
    settings = make_settings(database_url, tmp_path, redis_url=redis_url, rate_limit_api=API_LIMIT)
    async with build_state(settings) as state:
        # The same client build_state made (short timeouts); only the clock is the test's.
        assert state.redis is not None
        assert state.redis_guard is not None
        state.redis_guard = RedisGuard(
            state.redis, cooldown_s=COOLDOWN_S, timeout_s=4 * settings.redis_timeout_s, clock=clock
        )
        state.limiter = build_rate_limiter(state.redis_guard)
        app = create_app(settings)
        app.state.agentstream = state
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield state, client


@pytest.fixture
def clock() -> Clock:
    return Clock()


async def test_a_frozen_redis_is_detected_once_then_skipped_until_it_is_back(
    server: tuple[AppState, httpx.AsyncClient], redis_proxy: TcpProxy, clock: Clock
) -> None:
    state, client = server
    guard = state.redis_guard
    assert guard is not None
    account = await register(client)
    before = redis_proxy.bytes_from_clients
    assert (await client.get("/v1/agents", headers=account.headers)).status_code == 200
    assert redis_proxy.bytes_from_clients > before  # counted in Redis, through the proxy

    redis_proxy.freeze()
    detecting = await client.get("/v1/agents", headers=account.headers)
    assert detecting.status_code == 200  # fail open
    assert not guard.available

    sent = redis_proxy.bytes_from_clients
    started = time.monotonic()
    statuses = [
        (await client.get("/v1/agents", headers=account.headers)).status_code for _ in range(20)
    ]
    elapsed = time.monotonic() - started
    assert statuses == [200] * 20  # far over the limit of 5, but Redis is skipped: fail open
    assert redis_proxy.bytes_from_clients == sent  # the limiter never called the frozen Redis
    assert elapsed < 2.0  # each request ~ms, not the Redis timeout (generous: shared machine)
    ready = await client.get("/ready")
    assert ready.json()["redis"] == "down"
    assert redis_proxy.bytes_from_clients == sent  # /ready did not wait on Redis either

    redis_proxy.thaw()  # like SIGCONT: Redis now runs the detecting request's held hit
    clock.now += COOLDOWN_S
    # Two hits counted (before the outage, and the held one); the skipped ones never were.
    after = [
        (await client.get("/v1/agents", headers=account.headers)).status_code
        for _ in range(API_LIMIT - 1)
    ]
    assert after == [200] * (API_LIMIT - 2) + [429]
    assert guard.available
    assert (await client.get("/ready")).json()["redis"] == "ok"
