"""Runs: numbered events, status, cancel and resume from any connection, owner only."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from httpx_sse import ServerSentEvent, aconnect_sse

from agentstream.models import Message
from agentstream.state import AppState
from tests.factories import Account, add_member, register
from tests.streaming.scripted import Script
from tests.streaming.wsclient import receive_until_terminal, ws_connect

MakeAgent = Callable[..., Any]


@dataclass
class Stream:
    response: httpx.Response
    frames: AsyncIterator[ServerSentEvent]


@asynccontextmanager
async def open_stream(
    http: httpx.AsyncClient, account: Account, method: str, path: str, **kwargs: Any
) -> AsyncIterator[Stream]:
    headers = account.headers | kwargs.pop("headers", {})
    async with aconnect_sse(http, method, path, headers=headers, **kwargs) as source:
        assert source.response.status_code == 200, await source.response.aread()
        yield Stream(source.response, source.aiter_sse())


async def take(source: Stream, count: int | None = None) -> list[dict[str, Any]]:
    """``count`` events (or all of them, to the end of the stream), checking ``id == seq``."""
    events: list[dict[str, Any]] = []
    async for sse in source.frames:
        event = json.loads(sse.data)
        assert sse.id == str(event["seq"])
        events.append(event)
        if len(events) == count:
            break
    return events


def text_of(events: list[dict[str, Any]]) -> str:
    return "".join(e["content"] for e in events if e["type"] == "text_delta")


async def stored(state: AppState, message_id: str) -> Message:
    async with state.sessions() as session:
        message = await session.get(Message, uuid.UUID(message_id))
    assert message is not None
    return message


async def test_events_are_numbered_and_the_first_names_the_run(
    live: httpx.AsyncClient, owner: Account, scripted_agent: MakeAgent, script: Script
) -> None:
    slug = await scripted_agent(script)
    path = f"/v1/agents/{slug}/chat/stream/advanced"
    async with open_stream(live, owner, "POST", path, json={"message": "hi"}) as source:
        run_id = source.response.headers["X-Run-Id"]
        conversation_id = source.response.headers["X-Conversation-Id"]
        events = await take(source)
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert events[0]["run_id"] == run_id == events[-1]["message_id"]
    assert events[0]["conversation_id"] == conversation_id
    assert all("run_id" not in e for e in events[1:])
    run = (await live.get(f"/v1/runs/{run_id}", headers=owner.headers)).json()
    assert run["status"] == "complete"
    assert run["last_seq"] == events[-1]["seq"]
    assert run["conversation_id"] == conversation_id
    assert run["agent"] == slug
    assert run["finished_at"] is not None
    assert run["trace_id"] is None  # tracing is off unless an OTLP endpoint is configured


async def test_basic_stream_skips_seqs_but_its_first_event_names_the_run(
    live: httpx.AsyncClient, owner: Account, scripted_agent: MakeAgent, script: Script
) -> None:
    slug = await scripted_agent(script)
    path = f"/v1/agents/{slug}/chat/stream"
    async with open_stream(live, owner, "POST", path, json={"message": "hi"}) as source:
        events = await take(source)
    assert events[0]["type"] == "text_delta"
    assert events[0]["seq"] == 3  # memory_context and typing are not shown here
    assert events[0]["run_id"] == events[-1]["message_id"]


async def test_resume_after_a_dropped_connection_gets_every_token_exactly_once(
    live: httpx.AsyncClient,
    owner: Account,
    scripted_agent: MakeAgent,
    state: AppState,
) -> None:
    script = Script(tokens=[f"t{i} " for i in range(8)], hold_after=5)
    slug = await scripted_agent(script)
    path = f"/v1/agents/{slug}/chat/stream/advanced"
    async with open_stream(live, owner, "POST", path, json={"message": "hi"}) as source:
        before = await take(source, 4)  # memory_context, typing, t0, t1: then drop
        run_id = source.response.headers["X-Run-Id"]
    await script.started.wait()
    events_path = f"/v1/runs/{run_id}/events"
    headers = {"Last-Event-ID": str(before[-1]["seq"])}
    async with open_stream(live, owner, "GET", events_path, headers=headers) as source:
        assert source.response.headers["X-Run-Id"] == run_id
        first = await take(source, 1)
        script.release.set()
        after = first + await take(source)
    seqs = [e["seq"] for e in before + after]
    assert seqs == list(range(1, len(seqs) + 1))  # no gap, no duplicate
    assert after[0]["run_id"] == run_id
    assert after[-1]["type"] == "done"
    message = await stored(state, run_id)
    assert text_of(before + after) == message.content == "".join(script.tokens)


async def test_two_subscribers_see_identical_sequences(
    live: httpx.AsyncClient, owner: Account, scripted_agent: MakeAgent
) -> None:
    script = Script(tokens=["a", "b", "c", "d"], hold_after=2)
    slug = await scripted_agent(script)
    path = f"/v1/agents/{slug}/chat/stream/advanced"
    async with open_stream(live, owner, "POST", path, json={"message": "hi"}) as first:
        run_id = first.response.headers["X-Run-Id"]
        events_path = f"/v1/runs/{run_id}/events"
        async with open_stream(live, owner, "GET", events_path) as second:
            await script.started.wait()
            script.release.set()
            one, two = await asyncio.gather(take(first), take(second))
    assert [e["seq"] for e in one] == [e["seq"] for e in two]
    # The same events (each subscriber's first one also names the run).
    assert [e["type"] for e in one] == [e["type"] for e in two]
    assert text_of(one) == text_of(two) == "abcd"
    assert one[-1] == two[-1]


async def test_rest_cancel_stops_the_model_and_stores_the_partial_reply(
    live: httpx.AsyncClient, owner: Account, scripted_agent: MakeAgent, state: AppState
) -> None:
    script = Script(tokens=["one ", "two ", "three"], hold_after=2)
    slug = await scripted_agent(script)
    path = f"/v1/agents/{slug}/chat/stream/advanced"
    async with open_stream(live, owner, "POST", path, json={"message": "go"}) as source:
        run_id = source.response.headers["X-Run-Id"]
        await script.started.wait()
        cancelled = await live.post(f"/v1/runs/{run_id}/cancel", headers=owner.headers)
        assert cancelled.status_code == 202
        assert cancelled.json()["id"] == run_id
        events = await take(source)
    await asyncio.wait_for(script.cancelled.wait(), 5)  # the model stream was closed
    script.release.set()
    assert events[-1]["type"] == "done"
    assert events[-1]["status"] == "cancelled"
    message = await stored(state, run_id)
    assert (message.status.value, message.content) == ("cancelled", "one two ")
    assert script.sent == 2
    run = (await live.get(f"/v1/runs/{run_id}", headers=owner.headers)).json()
    assert run["status"] == "cancelled"
    again = await live.post(f"/v1/runs/{run_id}/cancel", headers=owner.headers)
    assert (again.status_code, again.json()["status"]) == (202, "cancelled")  # idempotent


async def test_a_run_started_on_a_websocket_resumes_over_sse(
    app: FastAPI, live: httpx.AsyncClient, owner: Account, scripted_agent: MakeAgent
) -> None:
    script = Script(tokens=["x", "y", "z"], hold_after=1)
    slug = await scripted_agent(script)
    async with ws_connect(app, f"/v1/agents/{slug}/ws?token={owner.access_token}") as ws:
        await ws.receive_json()
        await ws.send_json({"type": "message", "content": "go"})
        first = [await ws.receive_json() for _ in range(3)]  # memory_context, typing, x
    run_id = first[0]["run_id"]
    path = f"/v1/runs/{run_id}/events?after={first[-1]['seq']}"
    async with open_stream(live, owner, "GET", path) as source:
        script.release.set()
        rest = await take(source)
    assert [e["seq"] for e in first + rest] == list(range(1, len(first + rest) + 1))
    assert text_of(first + rest) == "xyz"


async def test_a_run_started_over_sse_resumes_on_a_websocket(
    app: FastAPI, live: httpx.AsyncClient, owner: Account, scripted_agent: MakeAgent
) -> None:
    script = Script(tokens=["x", "y", "z"], hold_after=1)
    slug = await scripted_agent(script)
    path = f"/v1/agents/{slug}/chat/stream/advanced"
    async with open_stream(live, owner, "POST", path, json={"message": "go"}) as source:
        first = await take(source, 3)
    async with ws_connect(app, f"/v1/agents/{slug}/ws?token={owner.access_token}") as ws:
        await ws.receive_json()
        resume = {"type": "resume", "run_id": first[0]["run_id"], "after": first[-1]["seq"]}
        await ws.send_json(resume)
        script.release.set()
        rest = await receive_until_terminal(ws)
        # Resumed runs are the socket's active run: messages wait for them as for their own.
        await ws.send_json({"type": "ping"})
        assert (await ws.receive_json())["type"] == "pong"
    assert rest[0]["run_id"] == first[0]["run_id"]
    assert [e["seq"] for e in first + rest] == list(range(1, len(first + rest) + 1))
    assert text_of(first + rest) == "xyz"


async def test_only_the_runs_owner_may_see_cancel_or_resume_it(
    app: FastAPI,
    client: httpx.AsyncClient,
    live: httpx.AsyncClient,
    owner: Account,
    scripted_agent: MakeAgent,
    script: Script,
) -> None:
    slug = await scripted_agent(script)
    teammate, stranger = await register(client), await register(client)
    await add_member(client, owner, teammate, "admin")
    response = await client.post(
        f"/v1/agents/{slug}/chat", json={"message": "hi"}, headers=owner.headers
    )
    run_id = response.json()["message_id"]
    for other in (teammate.in_team(owner.team_id), stranger.headers):
        for method, path in (
            ("GET", f"/v1/runs/{run_id}"),
            ("POST", f"/v1/runs/{run_id}/cancel"),
            ("GET", f"/v1/runs/{run_id}/events"),
        ):
            answer = await live.request(method, path, headers=other)
            assert answer.status_code == 404, (method, path)
            assert answer.json()["error"] == "run_not_found"
    own = await live.get(f"/v1/runs/{run_id}", headers=owner.headers)
    assert own.status_code == 200
    url = f"/v1/agents/{slug}/ws?token={teammate.access_token}&team_id={owner.team_id}"
    async with ws_connect(app, url) as ws:
        await ws.receive_json()
        await ws.send_json({"type": "resume", "run_id": run_id})
        error = await ws.receive_json()
        assert (error["type"], error["error_code"]) == ("error", "run_not_found")
        await ws.send_json({"type": "ping"})
        assert (await ws.receive_json())["type"] == "pong"


@pytest.mark.parametrize("settings_overrides", [{"max_active_runs_per_user": 2}])
async def test_a_user_may_have_only_so_many_runs_at_once(
    app: FastAPI, client: httpx.AsyncClient, owner: Account, scripted_agent: MakeAgent
) -> None:
    script = Script(tokens=["a", "b"], hold_after=1)
    slug = await scripted_agent(script)
    async with contextlib.AsyncExitStack() as stack:
        url = f"/v1/agents/{slug}/ws?token={owner.access_token}"
        held = [await stack.enter_async_context(ws_connect(app, url)) for _ in range(3)]
        for ws in held[:2]:
            await ws.receive_json()
            await ws.send_json({"type": "message", "content": "go"})
            assert (await ws.receive_json())["type"] == "memory_context"
        await held[2].receive_json()
        await held[2].send_json({"type": "message", "content": "one too many"})
        error = await held[2].receive_json()
        assert (error["type"], error["error_code"]) == ("error", "too_many_runs")
        refused = await client.post(
            f"/v1/agents/{slug}/chat", json={"message": "hi"}, headers=owner.headers
        )
        assert (refused.status_code, refused.json()["error"]) == (429, "too_many_runs")
        script.release.set()
        for ws in held[:2]:
            assert (await receive_until_terminal(ws))[-1]["status"] == "complete"
    again = await client.post(
        f"/v1/agents/{slug}/chat", json={"message": "hi"}, headers=owner.headers
    )
    assert again.status_code == 200


@pytest.mark.parametrize("settings_overrides", [{"run_events_ttl_s": 0}])
async def test_events_of_a_run_finished_longer_ago_than_the_ttl_are_gone(
    client: httpx.AsyncClient, owner: Account, scripted_agent: MakeAgent, script: Script
) -> None:
    slug = await scripted_agent(script)
    response = await client.post(
        f"/v1/agents/{slug}/chat", json={"message": "hi"}, headers=owner.headers
    )
    run_id = response.json()["message_id"]
    gone = await client.get(f"/v1/runs/{run_id}/events", headers=owner.headers)
    assert (gone.status_code, gone.json()["error"]) == (410, "run_events_expired")
    run = await client.get(f"/v1/runs/{run_id}", headers=owner.headers)
    assert run.json()["status"] == "complete"  # the message itself is never lost
