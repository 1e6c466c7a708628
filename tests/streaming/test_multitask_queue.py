"""Busy conversations, the decisions around waiting turns: order, cancel, disconnect, shutdown,
the per-user cap, ``interrupt`` with turns queued, the agent's default, bad values."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from fastapi import FastAPI

from agentstream.models import RunStatus
from agentstream.state import AppState
from tests.factories import Account
from tests.streaming.live import live_sse
from tests.streaming.multitask import MakeAgent, StartBusy, run_status, runs_with, seen_by_model
from tests.streaming.scripted import Script
from tests.streaming.wsclient import ws_connect


async def test_waiting_turns_start_one_by_one_in_the_order_they_were_sent(
    busy: StartBusy, state: AppState
) -> None:
    async with busy() as held:
        script = held.script
        waiting = []
        for count, text in enumerate(["two", "three", "four"], start=1):
            waiting.append(
                asyncio.create_task(held.send("sse-advanced", text, multitask="enqueue"))
            )
            await runs_with(state, held.conversation_id, RunStatus.queued, count)
        script.release.set()
        outcomes = await asyncio.wait_for(asyncio.gather(*waiting), 20)
    # Each waits for the turn sent before it, and the model answers them in that order.
    ahead = [held.run_id, *(o.run_id for o in outcomes[:-1])]
    assert [o.queued_behind for o in outcomes] == ahead
    assert [seen_by_model(m)[-1] for m, _ in script.calls] == ["first", "two", "three", "four"]
    reply = "Hello there!"
    assert seen_by_model(script.calls[3][0]) == [
        *("first", reply, "two", reply, "three", reply, "four")
    ]
    assert all(o.ended == "complete" for o in outcomes)


async def test_a_waiting_turn_cancelled_never_calls_the_model(
    live: httpx.AsyncClient, owner: Account, busy: StartBusy, state: AppState
) -> None:
    async with busy() as held, held.stream("two", multitask="enqueue") as source:
        waiting_id = source.response.headers["X-Run-Id"]
        run = (await live.get(f"/v1/runs/{waiting_id}", headers=owner.headers)).json()
        assert run["status"] == "queued"
        cancel = await live.post(f"/v1/runs/{waiting_id}/cancel", headers=owner.headers)
        assert cancel.status_code == 202
        events = [json.loads(sse.data) async for sse in source.aiter_sse()]
    assert [e["type"] for e in events] == ["queued", "done"]
    assert events[-1]["status"] == "cancelled"
    assert [e["seq"] for e in events] == [1, 2]
    assert await run_status(state, waiting_id) is RunStatus.cancelled
    assert await run_status(state, held.run_id) is RunStatus.complete
    assert len(held.script.calls) == 1


@pytest.mark.parametrize("on_disconnect", ["cancel", "continue"])
async def test_a_waiting_client_that_leaves_follows_on_disconnect(
    on_disconnect: str, app: FastAPI, owner: Account, busy: StartBusy, state: AppState
) -> None:
    async with busy() as held:
        body = held.body("two", multitask="enqueue", on_disconnect=on_disconnect)
        path = f"/v1/agents/{held.slug}/chat/stream/advanced"
        async with live_sse(app, path, body, owner.headers) as second:
            assert (await second.next_event())["type"] == "queued"
            second.disconnect()
        if on_disconnect == "cancel":
            await runs_with(state, held.conversation_id, RunStatus.cancelled)
    if on_disconnect == "continue":
        # Not a cancel: the turn still gets its answer, stored, after the first.
        await runs_with(state, held.conversation_id, RunStatus.complete, 2)
    assert len(held.script.calls) == (1 if on_disconnect == "cancel" else 2)


async def test_shutdown_interrupts_waiting_turns_and_stores_them(
    busy: StartBusy, state: AppState
) -> None:
    async with busy() as held:
        second = asyncio.create_task(held.send("sse-advanced", "two", multitask="enqueue"))
        await runs_with(state, held.conversation_id, RunStatus.queued)
        await state.runs.interrupt_all(5)
        outcome = await asyncio.wait_for(second, 10)
    assert (outcome.queued_behind, outcome.ended) == (held.run_id, "interrupted")
    assert outcome.run_id is not None
    assert await run_status(state, outcome.run_id) is RunStatus.interrupted
    assert len(held.script.calls) == 1


@pytest.mark.parametrize("settings_overrides", [{"max_active_runs_per_user": 2}])
async def test_waiting_turns_count_toward_the_active_run_cap(
    live: httpx.AsyncClient, owner: Account, busy: StartBusy
) -> None:
    async with busy() as held, held.stream("two", multitask="enqueue") as source:
        third = await live.post(
            f"/v1/agents/{held.slug}/chat",
            json=held.body("three", multitask="enqueue"),
            headers=owner.headers,
        )
        assert (third.status_code, third.json()["error"]) == (429, "too_many_runs")
        held.script.release.set()
        events = [json.loads(sse.data) async for sse in source.aiter_sse()]
    assert events[-1]["status"] == "complete"


async def test_interrupt_also_cancels_the_turns_waiting_before_it(
    busy: StartBusy, state: AppState
) -> None:
    async with busy() as held:
        waiting = asyncio.create_task(held.send("sse-advanced", "two", multitask="enqueue"))
        await runs_with(state, held.conversation_id, RunStatus.queued)
        interrupting = asyncio.create_task(held.send("ws", "three", multitask="interrupt"))
        cancelled = await asyncio.wait_for(waiting, 10)
        await asyncio.wait_for(held.events, 10)
        held.script.release.set()
        answered = await asyncio.wait_for(interrupting, 10)
    assert cancelled.ended == "cancelled"
    assert held.events.result()[-1]["status"] == "cancelled"
    assert answered.ended == "complete"
    assert [seen_by_model(m)[-1] for m, _ in held.script.calls] == ["first", "three"]


async def test_a_request_without_multitask_follows_the_agents_setting(
    busy: StartBusy, state: AppState
) -> None:
    async with busy(settings={"multitask": "enqueue"}) as held:
        waiting = asyncio.create_task(held.send("rest", "two", multitask=None))
        await runs_with(state, held.conversation_id, RunStatus.queued)
        # The request's own choice wins over the agent's.
        refused = await held.send("rest", "three", multitask="reject")
        assert refused.refusal == ("conversation_busy", held.run_id)
        held.script.release.set()
        answered = await asyncio.wait_for(waiting, 10)
    assert answered.ended == "complete"


async def test_the_default_without_any_setting_is_reject(busy: StartBusy) -> None:
    async with busy() as held:
        for transport in ("sse", "ws"):
            outcome = await held.send(transport, "x", multitask=None)
            assert outcome.refusal == ("conversation_busy", held.run_id)


async def test_an_unknown_multitask_is_a_validation_error(
    app: FastAPI, client: httpx.AsyncClient, owner: Account, scripted_agent: MakeAgent
) -> None:
    slug = await scripted_agent(Script())
    bad = {"message": "hi", "multitask": "later"}
    for path in (f"/v1/agents/{slug}/chat", f"/v1/agents/{slug}/chat/stream"):
        response = await client.post(path, json=bad, headers=owner.headers)
        assert (response.status_code, response.json()["error"]) == (422, "validation_error")
    async with ws_connect(app, f"/v1/agents/{slug}/ws?token={owner.access_token}") as ws:
        await ws.receive_json()
        await ws.send_json({"type": "message", "content": "hi", "multitask": "later"})
        error = await ws.receive_json()
    assert (error["type"], error["error_code"]) == ("error", "invalid_message")
    assert "multitask" in error["content"]
