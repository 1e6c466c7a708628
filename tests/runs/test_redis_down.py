"""Two workers sharing runs through Redis, and Redis going away mid-run: nothing the database
has is lost, serving goes on, and resuming through the other worker says it is unavailable."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
from httpx_sse import aconnect_sse

from agentstream.app import build_state
from agentstream.state import AppState
from tests.conftest import make_settings, redis_via
from tests.factories import create_agent, register
from tests.fakes.tcpproxy import TcpProxy
from tests.runs.workers import worker as shared_worker
from tests.streaming.scripted import Script


@contextlib.asynccontextmanager
async def worker(
    database_url: str, tmp_path: Path, redis_url: str
) -> AsyncIterator[tuple[AppState, httpx.AsyncClient]]:
    """One worker whose Redis, once found down, is skipped for a second at a time; limits on,
    so that failing open is exercised."""
    async with shared_worker(
        database_url, tmp_path, redis_url, redis_cooldown_s=1, rate_limit_api=1000
    ) as one:
        yield one.state, one.http


async def read_all(
    http: httpx.AsyncClient, path: str, headers: dict[str, str]
) -> list[dict[str, Any]] | None:
    """Every event of an SSE response (``None`` unless it answers 200), bounded."""
    async with asyncio.timeout(10), aconnect_sse(http, "GET", path, headers=headers) as source:
        if source.response.status_code != 200:
            return None
        events = [json.loads(sse.data) async for sse in source.aiter_sse()]
    # A reader that lost the log (Redis went again) ends with an error without seq.
    return [e for e in events if "seq" in e] or None


async def test_redis_down_mid_run_loses_nothing_and_serving_goes_on(
    database_url: str, tmp_path: Path, redis_proxy: TcpProxy
) -> None:
    url = redis_via(redis_proxy)
    script = Script(tokens=["before ", "during ", "after"], hold_after=1)
    async with (
        worker(database_url, tmp_path / "a", url) as (a, http_a),
        worker(database_url, tmp_path / "b", url) as (_, http_b),
    ):
        a.models.register("scripted:redis-down", script.model())
        owner = await register(http_a)
        await create_agent(http_a, owner, "bot", model="scripted:redis-down")
        async with aconnect_sse(
            http_a,
            "POST",
            "/v1/agents/bot/chat/stream/advanced",
            json={"message": "go"},
            headers=owner.headers,
        ) as source:
            run_id = source.response.headers["X-Run-Id"]
            await script.started.wait()
            # Through Redis, the other worker can read the run while Redis is up.
            status = await http_b.get(f"/v1/runs/{run_id}", headers=owner.headers)
            assert status.json()["status"] == "running"
            redis_proxy.kill()
            script.release.set()
            events = [json.loads(sse.data) async for sse in source.aiter_sse()]
        # The run finished and its reply is stored, Redis or not.
        assert events[-1]["type"] == "done"
        text = "".join(e["content"] for e in events if e["type"] == "text_delta")
        assert text == "before during after"
        stored = await http_b.get(f"/v1/runs/{run_id}", headers=owner.headers)
        assert stored.json()["status"] == "complete"
        # Serving goes on on both workers: limits fail open, chats run.
        for http in (http_a, http_b):
            listed = await http.get("/v1/agents", headers=owner.headers)
            assert listed.status_code == 200
        reply = await http_a.post(
            "/v1/agents/bot/chat", json={"message": "again"}, headers=owner.headers
        )
        assert reply.status_code == 200
        # Resuming through the worker that does not hold the run needs Redis: it says so.
        resumed = await http_b.get(f"/v1/runs/{run_id}/events", headers=owner.headers)
        assert resumed.status_code == 503
        assert resumed.json()["error"] == "unavailable"
        assert "Redis" in resumed.json()["message"]
        # The worker that ran it still replays it from its own copy.
        own = await http_a.get(f"/v1/runs/{run_id}/events", headers=owner.headers)
        assert own.status_code == 200
        # Redis comes back: the run's log reaches it (the mirror kept what it could not
        # write), and the other worker replays the whole run, every event once.
        redis_proxy.restore()
        deadline = time.monotonic() + 20
        while True:
            replayed = await read_all(http_b, f"/v1/runs/{run_id}/events", owner.headers)
            if replayed is not None and replayed[-1]["type"] == "done":
                break
            assert time.monotonic() < deadline, replayed
            await asyncio.sleep(0.2)  # polling for Redis' return (a second's cooldown)
        assert [e["seq"] for e in replayed] == [e["seq"] for e in events]
        assert [e["type"] for e in replayed] == [e["type"] for e in events]
        replayed_text = "".join(e["content"] for e in replayed if e["type"] == "text_delta")
        assert replayed_text == "before during after"


async def test_a_worker_is_known_alive_from_its_start(
    database_url: str, tmp_path: Path, redis_proxy: TcpProxy
) -> None:
    # Else, until its first periodic heartbeat, other workers would interrupt its runs.
    url = redis_via(redis_proxy)
    settings = make_settings(database_url, tmp_path, redis_url=url, run_lease_s=600)
    async with build_state(settings) as state:
        assert state.redis is not None
        assert await state.redis.exists(f"agentstream:worker:{state.worker_id}")
