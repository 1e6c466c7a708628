"""Busy conversations: a second message while the first reply streams follows ``multitask``
(reject / interrupt / enqueue) on every transport (docs/protocol.md, "Busy conversations")."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from agentstream.models import RunStatus
from agentstream.state import AppState
from tests.factories import Account
from tests.streaming.multitask import (
    TRANSPORTS,
    StartBusy,
    run_status,
    runs_with,
    seen_by_model,
)


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_reject_is_409_naming_the_running_run_which_goes_on(
    transport: str, live: httpx.AsyncClient, owner: Account, busy: StartBusy
) -> None:
    async with busy() as held:
        outcome = await held.send(transport, "two", multitask="reject")
        assert outcome.refusal == ("conversation_busy", held.run_id)
        assert outcome.status == (None if transport == "ws" else 409)
    first = held.events.result()
    assert (first[-1]["type"], first[-1]["status"]) == ("done", "complete")
    assert len(held.script.calls) == 1  # the refused message never reached the model
    messages = await live.get(
        f"/v1/conversations/{held.conversation_id}/messages", headers=owner.headers
    )
    assert [m["content"] for m in messages.json()["items"]] == ["first", "Hello there!"]


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_interrupt_cancels_the_running_run_then_answers(
    transport: str, busy: StartBusy, state: AppState
) -> None:
    async with busy() as held:
        script = held.script
        second = asyncio.create_task(held.send(transport, "two", multitask="interrupt"))
        first = await asyncio.wait_for(held.events, 10)
        assert (first[-1]["type"], first[-1]["status"]) == ("done", "cancelled")
        assert len(script.calls) == 1  # the new turn waited for the cancelled run to be stored
        script.release.set()
        outcome = await asyncio.wait_for(second, 10)
    assert (outcome.ended, outcome.text, outcome.queued_behind) == (
        "complete",
        "Hello there!",
        None,
    )
    assert await run_status(state, held.run_id) is RunStatus.cancelled
    assert outcome.run_id is not None
    assert await run_status(state, outcome.run_id) is RunStatus.complete
    # The new turn continues the conversation after the interrupted reply.
    assert seen_by_model(script.calls[1][0]) == ["first", "Hello", "two"]


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_enqueue_waits_for_the_running_run_then_answers(
    transport: str, busy: StartBusy, state: AppState
) -> None:
    async with busy() as held:
        script = held.script
        second = asyncio.create_task(held.send(transport, "two", multitask="enqueue"))
        await runs_with(state, held.conversation_id, RunStatus.queued)
        assert len(script.calls) == 1  # queued: the model is not called yet
        script.release.set()
        first = await asyncio.wait_for(held.events, 10)
        outcome = await asyncio.wait_for(second, 10)
    assert (first[-1]["type"], first[-1]["status"]) == ("done", "complete")
    assert (outcome.ended, outcome.text) == ("complete", "Hello there!")
    # The stream opens with ``queued`` naming the run it waits for (REST has no stream).
    assert outcome.queued_behind == (None if transport == "rest" else held.run_id)
    if outcome.first is not None and transport != "rest":
        assert outcome.first["run_id"] == outcome.run_id  # the next event names the new run
    assert outcome.run_id is not None
    assert await run_status(state, outcome.run_id) is RunStatus.complete
    # It started after the first reply was stored whole.
    assert seen_by_model(script.calls[1][0]) == ["first", "Hello there!", "two"]
