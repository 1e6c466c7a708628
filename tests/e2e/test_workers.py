"""``serve --workers 2`` with PostgreSQL and Redis: any worker serves any run."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from httpx_sse import aconnect_sse

from tests.e2e.server import ServerProcess
from tests.e2e.workers import pinned_clients, two_workers
from tests.factories import Account, create_agent, register
from tests.fakes.openai_server import FakeOpenAI, Reply

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.timeout(180),  # two worker processes start once for the module (slow if busy)
    pytest.mark.parametrize("database_url", ["postgres"], indirect=True),  # workers need it
]

LEASE_S = 3


@pytest.fixture(scope="module")
def workers(database_url: str, redis_url: str, upstream: FakeOpenAI) -> Iterator[ServerProcess]:
    with two_workers(
        database_url,
        redis_url,
        upstream,
        AGENTSTREAM_RUN_LEASE_S=str(LEASE_S),
        AGENTSTREAM_MAX_ACTIVE_RUNS_PER_USER="5",
    ) as process:
        yield process


async def test_a_run_is_read_resumed_and_cancelled_through_the_other_worker(
    workers: ServerProcess, upstream: FakeOpenAI
) -> None:
    model = f"slow-{uuid.uuid4().hex[:8]}"
    upstream.reply(model, Reply(tokens=[f"t{i} " for i in range(300)], delay_s=0.02))
    async with pinned_clients(workers.url) as (one, other):
        owner: Account = await register(one)
        await create_agent(one, owner, "remote", model=f"openai:{model}")
        seen: list[dict[str, Any]] = []
        async with aconnect_sse(
            one,
            "POST",
            "/v1/agents/remote/chat/stream/advanced",
            json={"message": "stream a lot"},
            headers=owner.headers,
        ) as source:
            run_id = source.response.headers["X-Run-Id"]
            async for sse in source.aiter_sse():
                seen.append(json.loads(sse.data))
                if len(seen) == 10:
                    break
        # The other worker sees the run live, replays it from the start, and stops it.
        status = (await other.get(f"/v1/runs/{run_id}", headers=owner.headers)).json()
        assert status["status"] == "running"
        replayed: list[dict[str, Any]] = []
        async with aconnect_sse(
            other, "GET", f"/v1/runs/{run_id}/events", headers=owner.headers
        ) as source:
            async for sse in source.aiter_sse():
                replayed.append(json.loads(sse.data))
                if len(replayed) == 12:
                    cancel = await one.post(f"/v1/runs/{run_id}/cancel", headers=owner.headers)
                    assert cancel.status_code == 202
        assert [e["seq"] for e in replayed] == list(range(1, len(replayed) + 1))
        assert replayed[:10][1:] == seen[1:]  # the same events (the first one is stamped)
        assert replayed[-1]["type"] == "done"
        assert replayed[-1]["status"] == "cancelled"
        record = upstream.streams_for(model)[-1]
        assert await asyncio.to_thread(record.closed_early.wait, 5)  # upstream closed
        assert record.sent < 300
        stored = (await other.get(f"/v1/runs/{run_id}", headers=owner.headers)).json()
        assert stored["status"] == "cancelled"
        assert stored["last_seq"] == replayed[-1]["seq"]


async def test_the_active_run_cap_holds_across_workers(
    workers: ServerProcess, upstream: FakeOpenAI
) -> None:
    model = f"slow-{uuid.uuid4().hex[:8]}"
    # Runs much longer than the lease (3 s): the cap must hold past it.
    upstream.reply(model, Reply(tokens=[f"t{i} " for i in range(3000)], delay_s=0.02))
    async with pinned_clients(workers.url) as (one, other):
        owner = await register(one)
        await create_agent(one, owner, "remote", model=f"openai:{model}")
        run_ids = []
        for client in (one, other, one, other, one):  # five: the default cap
            async with aconnect_sse(
                client,
                "POST",
                "/v1/agents/remote/chat/stream",
                json={"message": "go"},
                headers=owner.headers,
            ) as source:
                run_ids.append(source.response.headers["X-Run-Id"])
        # Three leases of asking for one more, on both workers: refused every time.
        deadline = time.monotonic() + 3 * LEASE_S
        while time.monotonic() < deadline:
            for client in (one, other):
                refused = await client.post(
                    "/v1/agents/remote/chat", json={"message": "one more"}, headers=owner.headers
                )
                assert (refused.status_code, refused.json()["error"]) == (429, "too_many_runs")
            await asyncio.sleep(LEASE_S / 6)  # sampling the cap, not synchronisation
        for run_id in run_ids:
            status = (await other.get(f"/v1/runs/{run_id}", headers=owner.headers)).json()
            assert status["status"] == "running"  # all five still streaming
        for run_id in run_ids:
            await other.post(f"/v1/runs/{run_id}/cancel", headers=owner.headers)


async def test_a_killed_workers_run_is_interrupted_and_its_resumer_told(
    workers: ServerProcess, upstream: FakeOpenAI
) -> None:
    model = f"slow-{uuid.uuid4().hex[:8]}"
    upstream.reply(model, Reply(tokens=[f"t{i} " for i in range(600)], delay_s=0.02))
    async with pinned_clients(workers.url) as (one, other):
        owner = await register(one)
        await create_agent(one, owner, "remote", model=f"openai:{model}")
        doomed = (await one.get("/health")).json()["pid"]
        async with aconnect_sse(
            one,
            "POST",
            "/v1/agents/remote/chat/stream",
            json={"message": "stream a lot"},
            headers=owner.headers,
        ) as source:
            run_id = source.response.headers["X-Run-Id"]
            count = 0
            async for _ in source.aiter_sse():
                count += 1
                if count == 60:
                    break
        events: list[dict[str, Any]] = []
        async with aconnect_sse(
            other, "GET", f"/v1/runs/{run_id}/events", headers=owner.headers
        ) as source:
            async for sse in source.aiter_sse():
                events.append(json.loads(sse.data))
                if len(events) == 70:
                    os.kill(doomed, signal.SIGKILL)
        # Within the lease (3 s here) the surviving worker interrupts the run.
        assert events[-1]["type"] == "error"
        assert events[-1]["error_code"] == "interrupted"
        run = (await other.get(f"/v1/runs/{run_id}", headers=owner.headers)).json()
        assert run["status"] == "interrupted"
        messages = await other.get(
            f"/v1/conversations/{run['conversation_id']}/messages", headers=owner.headers
        )
        reply = messages.json()["items"][-1]
        seen = "".join(e.get("content", "") for e in events if e["type"] == "text_delta")
        assert reply["status"] == "interrupted"
        assert reply["content"] == seen  # recovered from the run's log, up to the kill
