"""The start-up cleanup of killed runs: no stored row and no run log can stop a server from
starting. A killed run's text recovered from its log is stored with U+FFFD for a NUL, and a run
whose log cannot even be read is logged once while the other killed runs are interrupted."""

from __future__ import annotations

import logging
from pathlib import Path

import httpx
import pytest
from redis.asyncio import Redis
from sqlalchemy import select

from agentstream.app import build_state
from agentstream.models import MessageStatus, RunRecord, RunStatus
from agentstream.runs import redis as shared
from agentstream.settings import Settings
from agentstream.state import AppState
from tests.conftest import make_settings
from tests.conversations.turns import new_turns, stored


async def test_a_poisoned_run_never_stops_a_start_and_killed_runs_are_interrupted(
    client: httpx.AsyncClient,
    state: AppState,
    settings: Settings,
    redis_url: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Two runs of a worker that was killed ("elsewhere" has no liveness key): one logged text
    # with a NUL (valid JSON, no PostgreSQL text column takes it), the other a log entry no
    # decoder accepts (a lone surrogate).
    nul_run, unreadable_run = await new_turns(client, state, 2)
    redis = Redis.from_url(redis_url)
    keys = [shared.stream_key(r.run_id) for r in (nul_run, unreadable_run)]
    try:
        nul = b'{"type":"text_delta","seq":2,"content":"a\\u0000b"}'
        await redis.xadd(keys[0], {"e": b'[{"type":"typing","seq":1},' + nul + b"]"}, id="2-0")
        await redis.xadd(
            keys[1], {"e": b'[{"type":"text_delta","seq":1,"content":"\\ud800"}]'}, id="1-0"
        )
        restarted = make_settings(
            settings.resolved_database_url, tmp_path / "restarted", redis_url=redis_url
        )
        with caplog.at_level(logging.ERROR, logger="agentstream.runs"):
            async with build_state(restarted):  # starts: the cleanup ran at start
                pass
    finally:
        await redis.delete(*keys)
        await redis.aclose()
    row = await stored(state.sessions, nul_run.run_id)
    assert (row.content, row.status) == ("a\ufffdb", MessageStatus.interrupted)
    async with state.sessions() as session:
        statuses = dict((await session.execute(select(RunRecord.id, RunRecord.status))).all())
    assert statuses[nul_run.run_id] is RunStatus.interrupted
    failures = [r for r in caplog.records if "could not interrupt" in r.getMessage()]
    assert [r.message_id for r in failures] == [str(unreadable_run.run_id)]  # type: ignore[attr-defined]
