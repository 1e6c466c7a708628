"""The per-user active-run cap counts a run for its whole life, on every worker (longer than
the lease: the shared count is renewed), and stops counting it once its reply has ended, even
while the final write still waits for the database."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis
from sqlalchemy import text

from agentstream.app import build_state
from agentstream.kit.errors import TooManyRuns
from agentstream.runs.limits import Slot
from agentstream.state import AppState
from tests.conftest import make_settings
from tests.factories import Account
from tests.streaming.scripted import Script

MakeAgent = Callable[..., Any]
LEASE_S = 0.6


async def test_the_shared_cap_outlives_the_lease_while_its_runs_go_on(
    database_url: str, tmp_path: Path, redis_url: str
) -> None:
    settings = make_settings(
        database_url,
        tmp_path,
        redis_url=redis_url,
        run_lease_s=LEASE_S,  # the coordinator renews every lease / 3
        max_active_runs_per_user=2,
    )
    user = uuid.uuid4()
    key = f"agentstream:active:{user}"
    redis = Redis.from_url(redis_url)
    try:
        async with build_state(settings) as state:
            held: list[Slot] = [await state.runs.reserve(user) for _ in range(2)]
            # Four leases of watching the shared count: it holds both slots throughout.
            deadline = time.monotonic() + 4 * LEASE_S
            while time.monotonic() < deadline:
                assert await redis.zcard(key) == 2
                assert await redis.pttl(key) > 0
                await asyncio.sleep(LEASE_S / 10)  # sampling the shared count, not waiting
            with pytest.raises(TooManyRuns):
                await state.runs.reserve(user)
            for slot in held:
                await slot.release()
            await (await state.runs.reserve(user)).release()
    finally:
        await redis.delete(key)
        await redis.aclose()


@pytest.mark.parametrize("settings_overrides", [{"max_active_runs_per_user": 1}])
async def test_a_reply_whose_final_write_waits_for_the_database_does_not_count(
    live: httpx.AsyncClient,
    state: AppState,
    owner: Account,
    scripted_agent: MakeAgent,
) -> None:
    script = Script(tokens=["a", "b"], hold_after=1)
    slug = await scripted_agent(script)
    chat = asyncio.create_task(
        live.post(f"/v1/agents/{slug}/chat", json={"message": "go"}, headers=owner.headers)
    )
    await script.started.wait()
    with pytest.raises(TooManyRuns):  # the model is streaming: it counts
        await state.runs.reserve(owner.user_id)
    # Hold the write its final write needs (PostgreSQL: the message row; SQLite: the database's
    # write lock) until the test is done with it.
    async with state.engine.connect() as blocker, blocker.begin():
        await blocker.execute(text("UPDATE messages SET content = content WHERE 1 = 0"))
        if blocker.dialect.name == "postgresql":
            await blocker.execute(
                text("SELECT 1 FROM messages WHERE role = 'assistant' FOR UPDATE")
            )
        script.release.set()
        # Once the reply has ended, a new run may start although the write waits.
        deadline = time.monotonic() + 10
        while True:
            try:
                slot = await state.runs.reserve(owner.user_id)
                break
            except TooManyRuns:
                assert time.monotonic() < deadline, "the waiting write still counts"
                await asyncio.sleep(0.01)  # polling the count, not synchronisation
        assert not chat.done()  # the final write is still waiting
        await slot.release()
    reply = await chat
    assert reply.status_code == 200
    assert reply.json()["response"] == "ab"
