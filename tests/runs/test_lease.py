"""A worker's liveness lease is kept off its event loop, and a reaper fences the worker it takes
for dead: a stalled loop is not a dead worker, and a heartbeat that lands first wins."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from httpx_sse import aconnect_sse
from redis import Redis as SyncRedis
from redis.asyncio import Redis
from sqlalchemy import select

from agentstream.models import MessageStatus, RunRecord, RunStatus
from agentstream.runs.lease import Lease, claim_dead
from agentstream.runs.redis import dead_key, decode_entries, stream_key, worker_key
from tests.conversations.turns import stored
from tests.factories import create_agent, register
from tests.runs.workers import worker
from tests.streaming.scripted import Script

LEASE_S = 0.6
OVERRIDES: dict[str, object] = {"run_lease_s": LEASE_S, "memory_extraction": False}


async def test_a_worker_whose_event_loop_stalls_past_the_lease_keeps_its_run(
    database_url: str, tmp_path: Path, redis_url: str
) -> None:
    lapsed = threading.Event()  # worker A's loop has been stalled for two leases
    reaped = threading.Event()  # worker B has reaped meanwhile (A's loop still stalled)
    runs: list[uuid.UUID] = []  # the run A streams

    def stall_this_loop() -> None:
        """The behaviour under test: the calling event loop runs nothing for two leases, then
        stays stalled until the other worker has reaped."""
        time.sleep(2 * LEASE_S)
        lapsed.set()
        assert reaped.wait(30)

    async def stalled_worker() -> tuple[str, list[dict[str, Any]]]:
        """Worker A, on a loop of its own (this thread's), streaming a run it stalls mid-way."""
        script = Script(tokens=["before ", "after"], hold_after=1)
        async with worker(database_url, tmp_path / "a", redis_url, **OVERRIDES) as a:
            a.state.models.register("scripted:stall", script.model())
            owner = await register(a.http)
            await create_agent(a.http, owner, "bot", model="scripted:stall")
            async with aconnect_sse(
                a.http,
                "POST",
                "/v1/agents/bot/chat/stream/advanced",
                json={"message": "go"},
                headers=owner.headers,
            ) as source:
                run_id = source.response.headers["X-Run-Id"]
                runs.append(uuid.UUID(run_id))
                await script.started.wait()
                stall_this_loop()
                script.release.set()
                events = [json.loads(sse.data) async for sse in source.aiter_sse()]
        return run_id, events

    async with worker(database_url, tmp_path / "b", redis_url, **OVERRIDES) as b:
        a_done = asyncio.ensure_future(asyncio.to_thread(asyncio.run, stalled_worker()))
        try:
            assert await asyncio.to_thread(lapsed.wait, 30), "worker A never stalled"
            await b.state.coordinator.reap()  # B's own reaper also ran while A was stalled
            async with b.state.sessions() as session:
                status = await session.scalar(select(RunRecord.status).filter_by(id=runs[0]))
            assert status == RunStatus.running  # not interrupted
        finally:
            reaped.set()
        async with asyncio.timeout(30):
            run_id, events = await a_done
        assert events[-1]["type"] == "done"
        assert "".join(e["content"] for e in events if e["type"] == "text_delta") == (
            "before after"
        )
        # The run's log in Redis (what any worker replays) ends as the client saw it end. Read
        # straight from Redis: a Redis call of B's timing out under CPU load (its circuit) is
        # not what this test is about.
        client = Redis.from_url(redis_url)
        try:
            logged = decode_entries(await client.xrange(stream_key(uuid.UUID(run_id))))
        finally:
            await client.aclose()
        assert [e.type for e in logged if e.type in ("error", "done")] == ["done"]
        async with b.state.sessions() as session:
            record = await session.get(RunRecord, uuid.UUID(run_id))
        assert record is not None
        assert record.status == RunStatus.complete
        message = await stored(b.state.sessions, uuid.UUID(run_id))
        assert (message.status, message.content) == (MessageStatus.complete, "before after")


async def test_a_reaper_cannot_claim_a_worker_whose_lease_is_held(redis_url: str) -> None:
    client = Redis.from_url(redis_url)
    victim = uuid.uuid4().hex
    keys = worker_key(victim), dead_key(victim)
    try:
        await client.set(keys[0], "pid:token", px=60_000)
        assert not await claim_dead(client, victim, "reaper", 60_000)
        assert await client.get(keys[1]) is None
        # Once the key is gone the claim succeeds, and the marker names the reaper.
        await client.delete(keys[0])
        assert await claim_dead(client, victim, "reaper", 60_000)
        assert await client.get(keys[1]) == b"reaper"
        assert 0 < await client.pttl(keys[1]) <= 60_000
    finally:
        await client.delete(*keys)
        await client.aclose()


def test_a_fenced_worker_says_so_once_and_its_lease_stops_at_shutdown(
    redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    client = SyncRedis.from_url(redis_url)
    lease = Lease(redis_url, worker_id=uuid.uuid4().hex, lease_s=30, timeout_s=2)
    keys = worker_key(lease.worker_id), dead_key(lease.worker_id)
    try:
        assert lease.beat()
        assert client.get(keys[0]) == lease.token.encode()
        assert 0 < client.pttl(keys[0]) <= 30_000
        lease.start()
        client.set(keys[1], "reaper-id", px=60_000)  # another worker took us for dead
        with caplog.at_level(logging.ERROR, logger="agentstream.runs"):
            assert lease.beat()
            assert lease.beat()
        fenced = [r for r in caplog.records if r.levelno == logging.ERROR]
        assert len(fenced) == 1
        assert "reaper-id" in fenced[0].getMessage()
        started = time.monotonic()
        lease.stop()
        assert time.monotonic() - started < 2.5
        name = f"agentstream-lease-{lease.worker_id[:8]}"
        assert name not in {t.name for t in threading.enumerate()}
        assert client.exists(keys[0]) == 0  # a clean exit tells the others at once
    finally:
        client.delete(*keys)
        client.close()
