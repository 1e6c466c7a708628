"""The reaper of a killed worker's runs: its terminal event reaches every reader, whatever its
cursor (the Redis log lags what clients saw from the dead worker)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
from redis.asyncio import Redis

from agentstream.app import build_state
from agentstream.chat import events as ev
from agentstream.models import RunRecord, RunStatus
from agentstream.runs import redis as shared
from agentstream.settings import Settings
from agentstream.state import AppState
from tests.conftest import make_settings
from tests.conversations.turns import new_turns


async def test_a_resumer_ahead_of_the_log_gets_the_reapers_terminal_event(
    client: httpx.AsyncClient,
    state: AppState,
    settings: Settings,
    redis_url: str,
    tmp_path: Path,
) -> None:
    # A run of a killed worker ("elsewhere" has no liveness key): its log holds seq 1..3, but
    # a client saw up to seq 5 straight from that worker before it died.
    (turn,) = await new_turns(client, state, 1)
    redis = Redis.from_url(redis_url)
    key = shared.stream_key(turn.run_id)
    try:
        deltas = b",".join(
            b'{"type":"text_delta","seq":%d,"content":"t%d "}' % (n, n) for n in (2, 3)
        )
        await redis.xadd(key, {"e": b'[{"type":"typing","seq":1},' + deltas + b"]"}, id="3-0")
        got: list[ev.ChatEvent] = []
        waiting = asyncio.Event()

        async def resume() -> None:
            async for batch in shared.follow(redis, turn.run_id, after=5, idle_s=0.05):
                got.extend(batch)
                waiting.set()

        resumer = asyncio.create_task(resume())
        async with asyncio.timeout(5):
            await waiting.wait()  # it waits for the log to reach its cursor
        restarted = make_settings(
            settings.resolved_database_url, tmp_path / "restarted", redis_url=redis_url
        )
        async with build_state(restarted):  # its start reaps the dead worker's run
            async with asyncio.timeout(10):
                await resumer
        assert [(e.type, e.seq) for e in got] == [("error", 4)]
        assert isinstance(got[0], ev.Error)
        assert got[0].error_code == "interrupted"
        # Any later reader, from any cursor, ends with the same terminal event.
        for after in (0, 3, 4, 5, 2**53):
            async with asyncio.timeout(5):
                events = [e async for b in shared.follow(redis, turn.run_id, after, 1) for e in b]
            assert (events[-1].type, events[-1].seq) == ("error", 4)
            assert [e.seq for e in events] == [s for s in (1, 2, 3) if s > after] + [4]
    finally:
        await redis.delete(key)
        await redis.aclose()
    async with state.sessions() as session:
        record = await session.get(RunRecord, turn.run_id)
    assert record is not None
    assert (record.status, record.last_seq) == (RunStatus.interrupted, 4)
