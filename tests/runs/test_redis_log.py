"""The run event log in Redis Streams: one entry per run per round trip, read back exactly."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from redis.asyncio import Redis

from agentstream.chat import events as ev
from agentstream.kit.redis import RedisGuard
from agentstream.runs.redis import (
    MIRROR_INTERVAL_S,
    MIRROR_MAX_INTERVAL_S,
    RedisRunLog,
    decode_entries,
    follow,
    mirror_pause,
    stream_key,
    stream_state,
)


@dataclass
class FakeRun:
    """What the mirror reads of a run: its id and numbered events."""

    id: uuid.UUID = field(default_factory=uuid.uuid4)
    events: list[ev.ChatEvent] = field(default_factory=list)

    def publish(self, count: int, *, last: bool = False) -> None:
        for _ in range(count):
            event: ev.ChatEvent = ev.TextDelta(content=f" t{len(self.events) + 1}")
            event.seq = len(self.events) + 1
            self.events.append(event)
        if last:
            usage = ev.Usage(model="fake")
            done = ev.Done(
                conversation_id=uuid.uuid4(), message_id=self.id, usage=usage, status="complete"
            )
            done.seq = len(self.events) + 1
            self.events.append(done)

    def events_after(self, seq: int) -> list[ev.ChatEvent]:
        return self.events[seq:]

    @property
    def last_seq(self) -> int:
        return len(self.events)

    @property
    def finished(self) -> bool:
        return bool(self.events) and self.events[-1].type in ev.TERMINAL_TYPES


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


def _log(redis: Redis) -> RedisRunLog:
    return RedisRunLog(RedisGuard(redis, cooldown_s=1, timeout_s=5), ttl_s=60, retry_s=0.1)


async def test_a_burst_is_one_entry_and_readers_get_exactly_the_events_after_theirs(
    redis: Redis,
) -> None:
    run, log = FakeRun(), _log(redis)
    run.publish(100)
    await log._append(redis, runs={run.id: run})  # type: ignore[dict-item]
    run.publish(20, last=True)
    await log._append(redis, runs={run.id: run})  # type: ignore[dict-item]
    try:
        assert await redis.xlen(stream_key(run.id)) == 2  # two round trips, two entries
        last_seq, events = await stream_state(log._guard, run.id)
        assert last_seq == 121
        assert [e.seq for e in events] == list(range(1, 122))
        batches = [b async for b in follow(redis, run.id, after=37, idle_s=1)]
        assert [e.seq for batch in batches for e in batch] == list(range(38, 122))
        assert batches[-1][-1].type == "done"
    finally:
        await redis.delete(stream_key(run.id))


async def test_a_retried_batch_with_more_events_is_read_without_repeats(redis: Redis) -> None:
    run, log = FakeRun(), _log(redis)
    run.publish(10)
    await log._append(redis, runs={run.id: run})  # type: ignore[dict-item]
    log._mirrored.clear()  # as if the reply was lost: the batch is sent again, with more
    run.publish(5, last=True)
    await log._append(redis, runs={run.id: run})  # type: ignore[dict-item]
    try:
        entries = await redis.xrange(stream_key(run.id))
        assert len(entries) == 2
        assert [e.seq for e in decode_entries(entries)] == list(range(1, 17))
        batches = [b async for b in follow(redis, run.id, after=4, idle_s=1)]
        assert [e.seq for batch in batches for e in batch] == list(range(5, 17))
    finally:
        await redis.delete(stream_key(run.id))


def test_the_mirror_pauses_longer_after_a_round_trip_of_many_runs() -> None:
    assert mirror_pause(1) == mirror_pause(20) == MIRROR_INTERVAL_S  # a few streams: 10 ms
    assert mirror_pause(200) == pytest.approx(0.1)  # CPU per second stays a few percent
    assert mirror_pause(5000) == MIRROR_MAX_INTERVAL_S


async def test_a_reader_at_or_past_a_finished_logs_end_gets_the_terminal_event_alone(
    redis: Redis,
) -> None:
    run, log = FakeRun(), _log(redis)
    run.publish(5, last=True)
    await log._append(redis, runs={run.id: run})  # type: ignore[dict-item]
    try:
        for cursor in (6, 7, 999, 2**53):
            async with asyncio.timeout(5):
                batches = [b async for b in follow(redis, run.id, after=cursor, idle_s=1)]
            assert [(e.type, e.seq) for b in batches for e in b] == [("done", 6)]
    finally:
        await redis.delete(stream_key(run.id))


async def test_a_reader_past_a_live_logs_end_waits_and_gets_a_terminal_event_numbered_below(
    redis: Redis,
) -> None:
    # The log lags what a client saw (the mirror's batches): a reaper then numbers its
    # terminal event from the log, below the client's cursor. The client still gets it.
    run, log = FakeRun(), _log(redis)
    run.publish(5)
    await log._append(redis, runs={run.id: run})  # type: ignore[dict-item]
    try:
        seen: list[list[ev.ChatEvent]] = []
        idle = asyncio.Event()

        async def read() -> None:
            async for batch in follow(redis, run.id, after=9, idle_s=0.05):
                seen.append(batch)
                if not batch:
                    idle.set()

        reader = asyncio.create_task(read())
        async with asyncio.timeout(5):
            await idle.wait()  # waiting on the log, not spinning, not done
        assert not reader.done()
        assert all(not b for b in seen)
        run.publish(0, last=True)  # the terminal event: seq 6, below the cursor
        await log._append(redis, runs={run.id: run})  # type: ignore[dict-item]
        async with asyncio.timeout(5):
            await reader
        assert [(e.type, e.seq) for b in seen for e in b] == [("done", 6)]
    finally:
        await redis.delete(stream_key(run.id))


async def test_every_log_key_has_a_ttl_from_its_first_write(redis: Redis) -> None:
    run, log = FakeRun(), _log(redis)
    run.publish(3)  # a live run: no terminal event yet
    await log._append(redis, runs={run.id: run})  # type: ignore[dict-item]
    try:
        assert 0 < await redis.pttl(stream_key(run.id)) <= 60_000
    finally:
        await redis.delete(stream_key(run.id))


async def test_a_failed_mirror_write_is_logged_and_retried_never_dropped(
    redis: Redis, caplog: pytest.LogCaptureFixture
) -> None:
    run, log = FakeRun(), _log(redis)
    key = stream_key(run.id)
    await redis.set(key, "not a stream")  # every XADD to it fails (WRONGTYPE)
    run.publish(3)
    try:
        with caplog.at_level(logging.WARNING, logger="agentstream.runs"):
            for _ in range(2):
                await log._append(redis, runs={run.id: run})  # type: ignore[dict-item]
        assert run.id not in log._mirrored  # its position did not advance
        assert log._dirty == {run.id: run}  # kept for the next round
        warned = [r for r in caplog.records if "could not mirror" in r.getMessage()]
        assert len(warned) == 1  # once per run, not once per round
        await redis.delete(key)  # the cause goes away: the retry mirrors every event
        run.publish(1, last=True)
        await log._append(redis, runs=log._dirty)  # type: ignore[arg-type]
        _, events = await stream_state(log._guard, run.id)
        assert [e.seq for e in events] == [1, 2, 3, 4, 5]
        assert run.id not in log._mirrored
    finally:
        await redis.delete(key)
