"""A property of the run log, on both backends (this worker's own run, and the Redis log
another worker reads): whatever the cursor (negative, mid-run, past the end, huge) and wherever
a reader disconnects and resumes from its last seen ``seq``, it ends with exactly one terminal
event and gets every delta after its cursor exactly once, in order."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redis.asyncio import Redis

from agentstream.chat import events as ev
from agentstream.conversations.turns import RunIdentity
from agentstream.kit.redis import RedisGuard
from agentstream.runs import redis as shared
from agentstream.runs.limits import MemoryActiveRuns
from agentstream.runs.reading import Batches
from agentstream.runs.registry import Run, RunControl, RunRegistry

MAX_CURSOR = 2**53


@dataclass(frozen=True)
class Plan:
    deltas: int  # text deltas before the terminal event
    start_at: int  # events published before the reader starts
    cursor: int
    drop_after: int | None  # the reader goes away after this many events, then resumes


plans = st.builds(
    Plan,
    deltas=st.integers(0, 12),
    start_at=st.integers(0, 14),
    cursor=st.one_of(st.integers(-3, 16), st.just(MAX_CURSOR), st.integers(16, MAX_CURSOR)),
    drop_after=st.one_of(st.none(), st.integers(0, 14)),
)


def _identity() -> RunIdentity:
    ids = [uuid.uuid4() for _ in range(6)]
    return RunIdentity(ids[0], ids[1], ids[2], ids[3], "bot", "scripted", ids[4], ids[5])


def _producer(identity: RunIdentity, deltas: int):  # type: ignore[no-untyped-def]
    async def produce(_: RunControl) -> AsyncIterator[ev.ChatEvent]:
        for n in range(deltas):
            yield ev.TextDelta(content=f"d{n + 1} ")
            await asyncio.sleep(0)  # a reader may come in between any two events
        yield ev.Done(
            conversation_id=identity.conversation_id,
            message_id=identity.run_id,
            usage=ev.Usage(model="scripted"),
            status="complete",
        )

    return produce


async def _read(batches: Batches, limit: int | None) -> list[ev.ChatEvent]:
    got: list[ev.ChatEvent] = []
    try:
        async for batch in batches:
            for event in batch:
                got.append(event)
                if limit is not None and len(got) >= limit:
                    return got
    finally:
        await batches.aclose()  # type: ignore[attr-defined]
    return got


def _check(plan: Plan, first: list[ev.ChatEvent], second: list[ev.ChatEvent]) -> None:
    terminal_seq = plan.deltas + 1
    got = first + second
    assert got, plan
    assert [e.type for e in got].count("done") == 1, (plan, got)
    assert got[-1].type == "done"
    assert got[-1].seq == terminal_seq
    cursor = max(0, plan.cursor)
    deltas = [e.seq for e in got if e.type == "text_delta"]
    assert deltas == list(range(cursor + 1, terminal_seq)), (plan, got)


async def _follow(
    subscribe,  # type: ignore[no-untyped-def]
    plan: Plan,
) -> tuple[list[ev.ChatEvent], list[ev.ChatEvent]]:
    first = await _read(subscribe(plan.cursor), plan.drop_after)
    second: list[ev.ChatEvent] = []
    dropped = plan.drop_after is not None and len(first) >= plan.drop_after
    if not dropped:
        # A stream that ends by itself ends with the terminal event.
        assert first, plan
        assert first[-1].type == "done", (plan, first)
    elif not first or first[-1].type != "done":
        # Gone before the end: resume after the last seq it saw (else its own cursor).
        resume_at = first[-1].seq or 0 if first else plan.cursor
        second = await _read(subscribe(resume_at), None)
    return first, second


async def _published(run: Run, at_least: int) -> None:
    """Until the run has published ``at_least`` events or finished (read as a reader would)."""
    if at_least > 0:
        async with asyncio.timeout(5):
            await _read(run.subscribe(0), at_least)


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(plan=plans)
async def test_in_process_every_reader_ends_once_and_sees_each_delta_once(plan: Plan) -> None:
    registry = RunRegistry(MemoryActiveRuns(), max_per_user=0, retain_s=60)
    identity = _identity()
    slot = await registry.reserve(identity.user_id)
    run = registry.start(identity, _producer(identity, plan.deltas), "continue", slot)
    await _published(run, plan.start_at)
    async with asyncio.timeout(10):
        first, second = await _follow(lambda after: run.subscribe(after, idle_s=0.05), plan)
    _check(plan, first, second)
    await run.task


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(plan=plans)
async def test_through_redis_every_reader_ends_once_and_sees_each_delta_once(
    redis: Redis, plan: Plan
) -> None:
    mirror = shared.RedisRunLog(RedisGuard(redis, cooldown_s=1, timeout_s=5), ttl_s=60, retry_s=0.1)
    mirror.start()
    registry = RunRegistry(MemoryActiveRuns(), max_per_user=0, retain_s=60, mirror=mirror)
    identity = _identity()
    slot = await registry.reserve(identity.user_id)
    run = registry.start(identity, _producer(identity, plan.deltas), "continue", slot)
    try:
        await _published(run, plan.start_at)

        def subscribe(after: int) -> Batches:
            return shared.follow(redis, run.id, max(0, after), 0.05)

        async with asyncio.timeout(10):
            first, second = await _follow(subscribe, plan)
        _check(plan, first, second)
        await run.task
    finally:
        await mirror.aclose()
        await redis.delete(shared.stream_key(run.id))
