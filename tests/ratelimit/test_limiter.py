"""The sliding-window limiter, in process and on real Redis, with an injected clock."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from agentstream.kit.redis import RedisGuard
from agentstream.ratelimit.limiter import MemoryRateLimiter, RateLimiter, RedisRateLimiter
from tests.conftest import REDIS_URL, unavailable


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


async def real_redis() -> Redis:
    """A client of the test Redis; skips (or fails in CI) when it is not reachable."""
    redis = Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        await redis.ping()
    except Exception as exc:
        await redis.aclose()
        unavailable(f"Redis not reachable at {REDIS_URL}: {exc}")
    return redis


@pytest.fixture(params=["memory", "redis"])
async def limiter(request: pytest.FixtureRequest, clock: Clock) -> AsyncIterator[RateLimiter]:
    if request.param == "memory":
        yield MemoryRateLimiter(clock)
        return
    redis = await real_redis()
    prefix = f"test:{uuid.uuid4().hex}:"
    yield RedisRateLimiter(RedisGuard(redis), clock, prefix=prefix)
    keys = [key async for key in redis.scan_iter(f"{prefix}*")]
    if keys:
        await redis.delete(*keys)
    await redis.aclose()


async def test_steady_traffic_under_the_limit_is_never_blocked(
    limiter: RateLimiter, clock: Clock
) -> None:
    for _ in range(300):  # 5.5 simulated minutes at one hit per 1.1 s, limit 60/min
        assert (await limiter.hit("steady", 60)).allowed
        clock.now += 1.1


async def test_burst_is_blocked_with_retry_after_and_reset(
    limiter: RateLimiter, clock: Clock
) -> None:
    start = clock.now
    decisions = [await limiter.hit("burst", 5) for _ in range(6)]
    assert [d.allowed for d in decisions] == [True] * 5 + [False]
    assert [d.remaining for d in decisions[:5]] == [4, 3, 2, 1, 0]
    blocked = decisions[-1]
    assert blocked.retry_after == pytest.approx(60.0)
    assert blocked.reset_at == pytest.approx(start + 60)
    headers = blocked.headers()
    assert headers["Retry-After"] == "60"
    assert headers["X-RateLimit-Reset"] == str(int(start + 60))
    assert headers["X-RateLimit-Remaining"] == "0"


async def test_window_recovers_even_when_the_client_keeps_retrying(
    limiter: RateLimiter, clock: Clock
) -> None:
    for _ in range(3):
        assert (await limiter.hit("retry", 3)).allowed
    for _ in range(59):  # retry every second while blocked: retries are not counted
        clock.now += 1
        assert not (await limiter.hit("retry", 3)).allowed
    clock.now += 1.01
    assert (await limiter.hit("retry", 3)).allowed


async def test_the_window_slides_rather_than_resets(limiter: RateLimiter, clock: Clock) -> None:
    for _ in range(2):
        assert (await limiter.hit("slide", 4)).allowed
    clock.now += 59
    for _ in range(2):
        assert (await limiter.hit("slide", 4)).allowed
    assert not (await limiter.hit("slide", 4)).allowed
    clock.now += 1.5  # only the first two hits have left the window
    assert (await limiter.hit("slide", 4)).allowed
    assert (await limiter.hit("slide", 4)).allowed
    assert not (await limiter.hit("slide", 4)).allowed


async def test_keys_are_independent(limiter: RateLimiter) -> None:
    assert (await limiter.hit("user-a", 1)).allowed
    assert not (await limiter.hit("user-a", 1)).allowed
    assert (await limiter.hit("user-b", 1)).allowed


async def test_limit_zero_disables(limiter: RateLimiter) -> None:
    assert all([(await limiter.hit("off", 0)).allowed for _ in range(100)])


async def test_concurrent_hits_allow_exactly_the_limit(limiter: RateLimiter) -> None:
    decisions = await asyncio.gather(*(limiter.hit("race", 10) for _ in range(100)))
    assert sum(d.allowed for d in decisions) == 10


async def test_two_redis_workers_share_one_window(clock: Clock) -> None:
    redis = await real_redis()
    prefix = f"test:{uuid.uuid4().hex}:"
    first = RedisRateLimiter(RedisGuard(redis), clock, prefix)
    second = RedisRateLimiter(RedisGuard(redis), clock, prefix)
    try:
        assert (await first.hit("shared", 2)).allowed
        assert (await second.hit("shared", 2)).allowed
        assert not (await first.hit("shared", 2)).allowed
    finally:
        await redis.delete(f"{prefix}shared")
        await redis.aclose()


async def test_redis_down_allows_and_logs_once(
    clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    redis = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.5)
    limiter = RedisRateLimiter(RedisGuard(redis), clock)
    with caplog.at_level(logging.WARNING, logger="agentstream.redis"):
        decisions = [await limiter.hit("down", 1) for _ in range(3)]
    await redis.aclose()
    assert all(d.allowed for d in decisions)
    warnings = [r for r in caplog.records if "Redis unavailable" in r.getMessage()]
    assert len(warnings) == 1  # once per outage, not one line per request
