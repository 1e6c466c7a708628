"""Run cursors (``?after=``, ``Last-Event-ID``, WebSocket ``after``): 0..2^53 or 422; a reader
of an ended run always ends with its terminal event, re-sent alone to a cursor at or past it;
a cursor past a live run's log waits. Never a spinning worker: ``/health`` keeps answering.
Both the worker's own copy of a run and the Redis log another worker reads."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from httpx_sse import aconnect_sse

from tests.factories import Account, create_agent, register
from tests.runs.workers import worker
from tests.streaming.scripted import Script
from tests.streaming.wsclient import receive_until_terminal, ws_connect

# A regression here freezes the event loop (the test's own too): only a thread can stop it.
pytestmark = pytest.mark.timeout(60, method="thread")

MakeAgent = Callable[..., Any]
MAX_CURSOR = 2**53
PAST = (1, 999, MAX_CURSOR)  # added to the terminal seq (minus one: at it)


async def read_events(
    http: httpx.AsyncClient, account: Account, run_id: str, **kwargs: Any
) -> list[dict[str, Any]]:
    """Every event of ``/v1/runs/{id}/events`` to the end of the stream (bounded)."""
    events: list[dict[str, Any]] = []
    headers = account.headers | kwargs.pop("headers", {})
    async with (
        asyncio.timeout(10),
        aconnect_sse(http, "GET", f"/v1/runs/{run_id}/events", headers=headers, **kwargs) as source,
    ):
        assert source.response.status_code == 200, await source.response.aread()
        async for sse in source.aiter_sse():
            event = json.loads(sse.data)
            assert sse.id == str(event["seq"])
            events.append(event)
    return events


async def healthy(http: httpx.AsyncClient) -> None:
    async with asyncio.timeout(5):
        assert (await http.get("/health")).status_code == 200


async def finished_run(http: httpx.AsyncClient, owner: Account, slug: str) -> tuple[str, int]:
    """A completed run's id and its terminal event's seq."""
    reply = await http.post(
        f"/v1/agents/{slug}/chat", json={"message": "hi"}, headers=owner.headers
    )
    assert reply.status_code == 200, reply.text
    run_id = reply.json()["message_id"]
    run = (await http.get(f"/v1/runs/{run_id}", headers=owner.headers)).json()
    assert run["status"] == "complete"
    return run_id, int(run["last_seq"])


def alone_terminal(events: list[dict[str, Any]], run_id: str, last_seq: int) -> None:
    assert [(e["type"], e["seq"]) for e in events] == [("done", last_seq)]
    assert events[0]["run_id"] == run_id  # the first event a reader gets names the run


@pytest.mark.parametrize(
    ("query", "header"),
    [
        ("-1", None),
        (str(MAX_CURSOR + 1), None),
        ("9" * 5000, None),
        ("1.5", None),
        ("abc", None),
        ("+5", None),
        ("1_0", None),
        (" 5 ", None),
        (None, "-1"),
        (None, "+5"),
        (None, "5.0"),
        (None, str(MAX_CURSOR + 1)),
        (None, "9" * 5000),
        (None, "abc"),
    ],
)
async def test_a_cursor_outside_0_to_2_53_is_a_validation_error(
    live: httpx.AsyncClient,
    owner: Account,
    scripted_agent: MakeAgent,
    script: Script,
    query: str | None,
    header: str | None,
) -> None:
    slug = await scripted_agent(script)
    run_id, _ = await finished_run(live, owner, slug)
    path = f"/v1/runs/{run_id}/events"
    params = {} if query is None else {"after": query}
    headers = owner.headers | ({} if header is None else {"Last-Event-ID": header})
    async with asyncio.timeout(10):
        answer = await live.get(path, params=params, headers=headers)
    assert (answer.status_code, answer.json()["error"]) == (422, "validation_error")
    await healthy(live)


async def test_a_cursor_at_or_past_a_finished_runs_end_gets_the_terminal_event_alone(
    live: httpx.AsyncClient, owner: Account, scripted_agent: MakeAgent, script: Script
) -> None:
    slug = await scripted_agent(script)
    run_id, last_seq = await finished_run(live, owner, slug)
    for cursor in (last_seq, *(min(last_seq + p, MAX_CURSOR) for p in PAST)):
        by_query = await read_events(live, owner, run_id, params={"after": cursor})
        alone_terminal(by_query, run_id, last_seq)
        by_header = await read_events(live, owner, run_id, headers={"Last-Event-ID": str(cursor)})
        alone_terminal(by_header, run_id, last_seq)
        await healthy(live)
    # A cursor before the end still gets exactly the events after it.
    tail = await read_events(live, owner, run_id, params={"after": last_seq - 2})
    assert [e["seq"] for e in tail] == [last_seq - 1, last_seq]


async def test_a_cursor_past_a_live_runs_log_waits_for_it_then_ends_with_the_terminal_event(
    live: httpx.AsyncClient, owner: Account, scripted_agent: MakeAgent
) -> None:
    script = Script(tokens=["a", "b", "c"], hold_after=1)
    slug = await scripted_agent(script)
    path = f"/v1/agents/{slug}/chat/stream/advanced"
    async with aconnect_sse(
        live, "POST", path, json={"message": "go"}, headers=owner.headers
    ) as source:
        run_id = source.response.headers["X-Run-Id"]
        await script.started.wait()
        far = asyncio.create_task(read_events(live, owner, run_id, params={"after": 50}))
        at_end = asyncio.create_task(
            read_events(live, owner, run_id, headers={"Last-Event-ID": str(MAX_CURSOR)})
        )
        await healthy(live)  # the waiting readers do not hold the worker
        assert not far.done()
        assert not at_end.done()
        script.release.set()
        own = [json.loads(sse.data) async for sse in source.aiter_sse()]
    last_seq = own[-1]["seq"]
    assert own[-1]["type"] == "done"
    assert last_seq < 50
    alone_terminal(await far, run_id, last_seq)
    alone_terminal(await at_end, run_id, last_seq)


async def test_a_websocket_resume_at_or_past_the_end_gets_the_terminal_event_alone(
    app: FastAPI, live: httpx.AsyncClient, owner: Account, scripted_agent: MakeAgent, script: Script
) -> None:
    slug = await scripted_agent(script)
    run_id, last_seq = await finished_run(live, owner, slug)
    async with ws_connect(app, f"/v1/agents/{slug}/ws?token={owner.access_token}") as ws:
        await ws.receive_json()
        for bad in (-1, MAX_CURSOR + 1, "x", "2", 1.0, True):
            await ws.send_json({"type": "resume", "run_id": run_id, "after": bad})
            error = await ws.receive_json()
            assert (error["type"], error["error_code"]) == ("error", "invalid_message")
        for cursor in (last_seq, last_seq + 1, MAX_CURSOR):
            await ws.send_json({"type": "resume", "run_id": run_id, "after": cursor})
            async with asyncio.timeout(10):
                events = await receive_until_terminal(ws)
            alone_terminal(events, run_id, last_seq)
        await ws.send_json({"type": "ping"})
        assert (await ws.receive_json())["type"] == "pong"
    await healthy(live)


async def test_through_redis_a_cursor_past_the_end_gets_the_terminal_event_alone(
    database_url: str, tmp_path: Path, redis_url: str
) -> None:
    script = Script(tokens=["a", "b", "c"], hold_after=1)
    async with (
        worker(database_url, tmp_path / "a", redis_url) as a,
        worker(database_url, tmp_path / "b", redis_url) as b,
    ):
        name = f"scripted:{uuid.uuid4().hex[:8]}"
        a.state.models.register(name, script.model())
        owner = await register(a.http)
        await create_agent(a.http, owner, "bot", model=name)
        path = "/v1/agents/bot/chat/stream/advanced"
        async with aconnect_sse(
            a.http, "POST", path, json={"message": "go"}, headers=owner.headers
        ) as source:
            run_id = source.response.headers["X-Run-Id"]
            await script.started.wait()
            # Worker b reads the run from the Redis log: a cursor past the log waits there.
            far = asyncio.create_task(read_events(b.http, owner, run_id, params={"after": 50}))
            await healthy(b.http)
            assert not far.done()
            script.release.set()
            own = [json.loads(sse.data) async for sse in source.aiter_sse()]
        last_seq = own[-1]["seq"]
        alone_terminal(await far, run_id, last_seq)
        for cursor in (last_seq, last_seq + 1, 999, MAX_CURSOR):
            by_query = await read_events(b.http, owner, run_id, params={"after": cursor})
            alone_terminal(by_query, run_id, last_seq)
            by_header = await read_events(
                b.http, owner, run_id, headers={"Last-Event-ID": str(cursor)}
            )
            alone_terminal(by_header, run_id, last_seq)
        whole = await read_events(b.http, owner, run_id, params={"after": 0})
        assert [e["seq"] for e in whole] == [e["seq"] for e in own]
        async with ws_connect(b.app, f"/v1/agents/bot/ws?token={owner.access_token}") as ws:
            await ws.receive_json()
            await ws.send_json({"type": "resume", "run_id": run_id, "after": MAX_CURSOR})
            async with asyncio.timeout(10):
                alone_terminal(await receive_until_terminal(ws), run_id, last_seq)
        await healthy(b.http)
