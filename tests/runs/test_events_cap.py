"""Finished runs' events kept for resume cost bounded memory: a compact log (a few times its
text), and at most ``AGENTSTREAM_RUN_EVENTS_MAX_MB`` per worker, the oldest finished runs'
dropped first (their resume is 410, their message untouched), never a live run's."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from httpx_sse import aconnect_sse

from agentstream.state import AppState
from tests.factories import Account
from tests.observability.test_metrics import sample
from tests.streaming.scripted import Script

MakeAgent = Callable[..., Any]


async def replay(live: httpx.AsyncClient, owner: Account, run_id: str) -> list[dict[str, Any]]:
    async with (
        asyncio.timeout(10),
        aconnect_sse(live, "GET", f"/v1/runs/{run_id}/events", headers=owner.headers) as source,
    ):
        assert source.response.status_code == 200
        return [json.loads(sse.data) async for sse in source.aiter_sse()]


async def test_a_finished_500_token_runs_kept_log_costs_at_most_4x_its_text(
    live: httpx.AsyncClient, state: AppState, owner: Account, scripted_agent: MakeAgent
) -> None:
    script = Script(tokens=[f" word{i % 10}" for i in range(500)])
    slug = await scripted_agent(script)
    path = f"/v1/agents/{slug}/chat/stream/advanced"
    async with aconnect_sse(
        live, "POST", path, json={"message": "go"}, headers=owner.headers
    ) as source:
        run_id = source.response.headers["X-Run-Id"]
        streamed = [json.loads(sse.data) async for sse in source.aiter_sse()]
    text = "".join(script.tokens)
    assert state.runs.get(uuid.UUID(run_id)) is not None
    assert 0 < state.runs.kept_bytes <= 4 * len(text.encode())
    # Read back from the compact log: the very same events, seq for seq.
    replayed = await replay(live, owner, run_id)
    assert replayed[1:] == streamed[1:]
    assert replayed[0]["seq"] == 1
    assert "".join(e["content"] for e in replayed if e["type"] == "text_delta") == text


@pytest.mark.parametrize("settings_overrides", [{"run_events_max_mb": 4096 / 2**20}])
async def test_over_the_cap_the_oldest_finished_runs_go_first_never_a_live_one(
    live: httpx.AsyncClient, state: AppState, owner: Account, scripted_agent: MakeAgent
) -> None:
    cap = 4096
    held = Script(tokens=[f" long{i}" for i in range(300)], hold_after=150)
    quick = Script(tokens=[f" t{i}" for i in range(40)])
    held_slug = await scripted_agent(held, slug="held")
    quick_slug = await scripted_agent(quick, slug="quick")
    held_chat = asyncio.create_task(
        live.post(f"/v1/agents/{held_slug}/chat", json={"message": "go"}, headers=owner.headers)
    )
    await held.started.wait()
    (live_run,) = state.runs.active()
    finished: list[str] = []
    while True:
        reply = await live.post(
            f"/v1/agents/{quick_slug}/chat", json={"message": "go"}, headers=owner.headers
        )
        finished.append(reply.json()["message_id"])
        assert state.runs.kept_bytes <= cap
        kept = [state.runs.get(uuid.UUID(r)) is not None for r in finished]
        # What is dropped is always the oldest: kept runs are a suffix.
        assert kept == sorted(kept)
        if not kept[0]:
            break
        assert len(finished) < 50, "the cap never dropped anything"
    assert state.runs.get(live_run.id) is live_run  # the live run is never dropped
    gone = await live.get(f"/v1/runs/{finished[0]}/events", headers=owner.headers)
    assert (gone.status_code, gone.json()["error"]) == (410, "run_events_expired")
    run = (await live.get(f"/v1/runs/{finished[0]}", headers=owner.headers)).json()
    assert run["status"] == "complete"
    messages = await live.get(
        f"/v1/conversations/{run['conversation_id']}/messages", headers=owner.headers
    )
    assert messages.json()["items"][-1]["content"] == "".join(quick.tokens)  # untouched
    assert len(await replay(live, owner, finished[-1])) > 40  # the newest still replays
    # Operators see what the kept events take.
    scraped = (await live.get("/metrics")).text
    assert sample(scraped, "agentstream_run_events_kept_bytes") == state.runs.kept_bytes > 0
    held.release.set()
    assert (await held_chat).status_code == 200
