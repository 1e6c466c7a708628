"""Traps: more streams than database connections, and an SSE client that walks away."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from agentstream.models import Message
from agentstream.state import AppState
from tests.factories import Account
from tests.streaming.live import live_sse
from tests.streaming.scripted import Script, parse_sse

MakeAgent = Callable[..., Any]


@pytest.mark.parametrize(
    "settings_overrides",
    [
        {
            "database_pool_size": 2,
            "database_max_overflow": 0,
            "database_timeout_s": 10,
            "max_active_runs_per_user": 10,  # the per-user cap is not what is tested here
        }
    ],
)
async def test_more_concurrent_streams_than_pool_connections_all_complete(
    client: httpx.AsyncClient, owner: Account, scripted_agent: MakeAgent, state: AppState
) -> None:
    """Ten streams in flight at once on a pool of two: none holds a connection while the
    model talks, so all reach the model together, all end ``done`` and all are stored."""
    script = Script(tokens=["part ", "rest"], hold_after=1)
    slug = await scripted_agent(script)

    async def one(n: int) -> list[dict[str, Any]]:
        response = await client.post(
            f"/v1/agents/{slug}/chat/stream", json={"message": f"n{n}"}, headers=owner.headers
        )
        assert response.status_code == 200, response.text
        events, _ = parse_sse(response.text)
        return events  # type: ignore[return-value]

    streams = [asyncio.create_task(one(n)) for n in range(10)]
    # Every model call is held at once: had a stream kept its connection, the third would
    # queue on the pool and never get here.
    await asyncio.wait_for(script.wait_for_calls(10), 20)
    script.release.set()
    results = await asyncio.wait_for(asyncio.gather(*streams), 30)
    for events in results:
        assert events[-1]["type"] == "done"
        assert events[-1]["status"] == "complete"
        text = "".join(e["content"] for e in events if e["type"] == "text_delta")
        assert text == "part rest"
    async with state.sessions() as session:
        stored = [await session.get(Message, uuid.UUID(e[-1]["message_id"])) for e in results]
    assert [(m.status.value, m.content) for m in stored if m] == [("complete", "part rest")] * 10


async def test_sse_disconnect_with_on_disconnect_cancel_stores_the_partial_reply(
    app: FastAPI, owner: Account, scripted_agent: MakeAgent, state: AppState
) -> None:
    script = Script(tokens=["a", "b", "c"], hold_after=1)
    slug = await scripted_agent(script)
    payload = {"message": "go", "on_disconnect": "cancel"}
    async with live_sse(app, f"/v1/agents/{slug}/chat/stream", payload, owner.headers) as sse:
        assert sse.status == 200
        first = await sse.next_event()
        assert (first["type"], first["content"]) == ("text_delta", "a")
        await script.started.wait()
        [run] = state.runs.active()
        sse.disconnect()
        # The server notices: the run is cancelled and the model stream closed.
        await asyncio.wait_for(run.task, 10)
    assert script.cancelled.is_set()
    assert script.closed_early.is_set()
    script.release.set()
    async with state.sessions() as session:
        stored = await session.get(Message, run.id)
    assert stored is not None
    assert (stored.status.value, stored.content) == ("cancelled", "a")
    assert script.sent == 1


async def test_sse_disconnect_by_default_lets_the_reply_finish(
    app: FastAPI, owner: Account, scripted_agent: MakeAgent, state: AppState
) -> None:
    """The counterpart: without ``on_disconnect: cancel`` the run outlives its client."""
    script = Script(tokens=["a", "b", "c"], hold_after=1)
    slug = await scripted_agent(script)
    path = f"/v1/agents/{slug}/chat/stream"
    async with live_sse(app, path, {"message": "go"}, owner.headers) as sse:
        await sse.next_event()
        await script.started.wait()
        [run] = state.runs.active()
        sse.disconnect()
    # The server noticed (its subscription closed) before the model goes on.
    await asyncio.wait_for(state.runs.streams_closed(), 10)
    assert not run.finished
    script.release.set()
    await asyncio.wait_for(run.task, 10)
    async with state.sessions() as session:
        stored = await session.get(Message, run.id)
    assert stored is not None
    assert (stored.status.value, stored.content) == ("complete", "abc")
    assert not script.closed_early.is_set()
