"""The Redis circuit breaker: unit behaviour with an injected clock, then against real Redis."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from agentstream.kit.redis import RedisGuard, RedisUnavailable, build_redis
from tests.conftest import redis_via
from tests.fakes.tcpproxy import TcpProxy


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class FakeOp:
    """An operation that fails while ``failing`` and counts how often it was really run."""

    def __init__(self) -> None:
        self.failing = False
        self.calls = 0

    async def __call__(self, redis: Redis) -> str:
        self.calls += 1
        if self.failing:
            raise RedisConnectionError("connection refused")
        return "pong"


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def guard(clock: Clock) -> AsyncIterator[RedisGuard]:
    # Never connected: every FakeOp decides the outcome itself.
    client = Redis.from_url("redis://127.0.0.1:1/0")
    yield RedisGuard(client, cooldown_s=5, clock=clock)
    await client.aclose()


async def test_a_failure_opens_the_breaker(guard: RedisGuard) -> None:
    op = FakeOp()
    assert await guard.run(op) == "pong"
    assert guard.available
    op.failing = True
    with pytest.raises(RedisUnavailable):
        await guard.run(op)
    assert not guard.available


async def test_while_open_calls_fail_fast_without_touching_redis(
    guard: RedisGuard, clock: Clock
) -> None:
    op = FakeOp()
    op.failing = True
    with pytest.raises(RedisUnavailable):
        await guard.run(op)
    op.failing = False  # Redis is back, but the cooldown has not passed
    clock.now += 4.9
    for _ in range(10):
        with pytest.raises(RedisUnavailable):
            await guard.run(op)
    assert op.calls == 1


async def test_after_the_cooldown_one_probe_goes_through_and_success_closes(
    guard: RedisGuard, clock: Clock
) -> None:
    op = FakeOp()
    op.failing = True
    with pytest.raises(RedisUnavailable):
        await guard.run(op)
    clock.now += 5
    assert guard.available  # half-open: the next call may probe
    op.failing = False
    assert await guard.run(op) == "pong"
    assert await guard.run(op) == "pong"
    assert op.calls == 3
    assert guard.available


async def test_a_failed_probe_opens_for_another_cooldown(guard: RedisGuard, clock: Clock) -> None:
    op = FakeOp()
    op.failing = True
    with pytest.raises(RedisUnavailable):
        await guard.run(op)
    clock.now += 5
    with pytest.raises(RedisUnavailable):
        await guard.run(op)  # the probe
    assert op.calls == 2
    clock.now += 4.9
    with pytest.raises(RedisUnavailable):
        await guard.run(op)
    assert op.calls == 2
    assert not guard.available


async def test_only_one_probe_at_a_time_while_half_open(guard: RedisGuard, clock: Clock) -> None:
    op = FakeOp()
    op.failing = True
    with pytest.raises(RedisUnavailable):
        await guard.run(op)
    clock.now += 5
    started, release = asyncio.Event(), asyncio.Event()

    async def slow_probe(redis: Redis) -> str:
        started.set()
        await release.wait()
        return "pong"

    probe = asyncio.create_task(guard.run(slow_probe))
    await started.wait()  # the probe holds the half-open slot
    with pytest.raises(RedisUnavailable):
        await guard.run(op)  # concurrent caller: fails fast
    release.set()
    assert await probe == "pong"
    assert guard.available


async def test_other_exceptions_pass_through_without_opening(guard: RedisGuard) -> None:
    async def broken(redis: Redis) -> str:
        raise ValueError("a bug, not an outage")

    with pytest.raises(ValueError, match="a bug"):
        await guard.run(broken)
    assert guard.available


async def test_an_outage_is_logged_once_and_the_recovery_once(
    guard: RedisGuard, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    op = FakeOp()
    op.failing = True
    with caplog.at_level(logging.INFO, logger="agentstream.redis"):
        for _ in range(3):  # one failure, then fail-fast calls, then a failed probe
            with pytest.raises(RedisUnavailable):
                await guard.run(op)
            clock.now += 3
        op.failing = False
        clock.now += 5
        await guard.run(op)
        await guard.run(op)
    messages = [r.getMessage() for r in caplog.records]
    assert len([m for m in messages if "Redis unavailable" in m]) == 1
    assert messages.count("Redis is available again") == 1
    assert len(messages) == 2


# -- against real Redis through a proxy that can freeze or cut it --------------------------


async def test_a_frozen_redis_costs_one_timeout_then_nothing(
    redis_proxy: TcpProxy, clock: Clock
) -> None:
    client = build_redis(redis_via(redis_proxy), timeout_s=0.2)
    guard = RedisGuard(client, cooldown_s=5, clock=clock)
    try:
        assert await guard.run(lambda r: r.ping())
        redis_proxy.freeze()
        with pytest.raises(RedisUnavailable):
            await guard.run(lambda r: r.ping())  # waits out the 0.2 s socket timeout
        sent = redis_proxy.bytes_from_clients
        for _ in range(20):
            with pytest.raises(RedisUnavailable):
                await guard.run(lambda r: r.ping())
        assert redis_proxy.bytes_from_clients == sent  # nothing was sent to the frozen Redis
        redis_proxy.thaw()
        clock.now += 5
        assert await guard.run(lambda r: r.ping())
        assert guard.available
    finally:
        await client.aclose()


async def test_a_killed_redis_opens_and_a_restored_one_closes(
    redis_proxy: TcpProxy, clock: Clock
) -> None:
    client = build_redis(redis_via(redis_proxy), timeout_s=0.2)
    guard = RedisGuard(client, cooldown_s=5, clock=clock)
    try:
        assert await guard.run(lambda r: r.ping())
        redis_proxy.kill()
        with pytest.raises(RedisUnavailable):
            await guard.run(lambda r: r.ping())
        assert not guard.available
        redis_proxy.restore()
        clock.now += 5
        assert await guard.run(lambda r: r.ping())
    finally:
        await client.aclose()
