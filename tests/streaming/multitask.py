"""Helpers for busy-conversation tests: a held first turn, and a second message sent over any
transport, its outcome read back the same way for all of them."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from fastapi import FastAPI
from httpx_sse import aconnect_sse
from pydantic_ai.messages import ModelMessage, ModelRequest, ModelResponse, TextPart, UserPromptPart
from sqlalchemy import func, select

from agentstream.models import RunRecord, RunStatus
from agentstream.state import AppState
from tests.factories import Account
from tests.streaming.scripted import Script, parse_sse
from tests.streaming.test_ui_protocols import agui_body, agui_events, ui_body, ui_chunks
from tests.streaming.wsclient import receive_until_terminal, ws_connect

TRANSPORTS = ["rest", "sse", "sse-advanced", "ws", "ui", "ag-ui"]


@dataclass
class Held:
    """A first turn whose model is held (``Script(hold_after=...)``) until released."""

    run_id: str
    conversation_id: str
    events: asyncio.Task[list[dict[str, Any]]]


async def _collect(frames: AsyncIterator[Any]) -> list[dict[str, Any]]:
    return [json.loads(sse.data) async for sse in frames]


@asynccontextmanager
async def held_turn(
    live: httpx.AsyncClient, owner: Account, slug: str, script: Script, text: str = "first"
) -> AsyncIterator[Held]:
    """Start a turn over advanced SSE and yield once its model is held; its events are
    collected in the background until its terminal event."""
    path = f"/v1/agents/{slug}/chat/stream/advanced"
    async with aconnect_sse(
        live, "POST", path, json={"message": text}, headers=owner.headers
    ) as source:
        assert source.response.status_code == 200
        events = asyncio.create_task(_collect(source.aiter_sse()))
        held = Held(
            source.response.headers["X-Run-Id"],
            source.response.headers["X-Conversation-Id"],
            events,
        )
        await asyncio.wait_for(script.started.wait(), 10)
        try:
            yield held
        finally:
            script.release.set()
            await asyncio.wait_for(events, 10)


@dataclass
class Busy(Held):
    """A held first turn of a scripted agent (``busy_conversation``): its script, and the means
    to send its conversation more messages or open an advanced stream on it."""

    script: Script
    slug: str
    app: FastAPI
    live: httpx.AsyncClient
    owner: Account

    async def send(self, transport: str, text: str, multitask: str | None) -> Outcome:
        """``text`` to this conversation over ``transport``, the whole answer read."""
        return await send(
            transport,
            app=self.app,
            live=self.live,
            owner=self.owner,
            slug=self.slug,
            conversation_id=self.conversation_id,
            text=text,
            multitask=multitask,
        )

    def body(self, text: str, **options: str) -> dict[str, str]:
        """A chat request body for this conversation."""
        return {"message": text, "conversation_id": self.conversation_id} | options

    def stream(self, text: str, **options: str) -> AbstractAsyncContextManager[Any]:
        """An advanced SSE stream of ``text`` to this conversation (``aconnect_sse``)."""
        path = f"/v1/agents/{self.slug}/chat/stream/advanced"
        body = self.body(text, **options)
        return aconnect_sse(self.live, "POST", path, json=body, headers=self.owner.headers)


MakeAgent = Callable[..., Awaitable[str]]
StartBusy = Callable[..., AbstractAsyncContextManager[Busy]]  # the ``busy`` fixture


@asynccontextmanager
async def busy_conversation(
    app: FastAPI,
    live: httpx.AsyncClient,
    owner: Account,
    scripted_agent: MakeAgent,
    **agent_fields: object,
) -> AsyncIterator[Busy]:
    """A new scripted agent (``agent_fields`` as ``scripted_agent`` takes them) whose first turn
    is held after its first token (``held_turn``)."""
    script = Script(hold_after=1)
    slug = await scripted_agent(script, **agent_fields)
    async with held_turn(live, owner, slug, script) as held:
        yield Busy(held.run_id, held.conversation_id, held.events, script, slug, app, live, owner)


@dataclass
class Outcome:
    """What a second message got, on any transport."""

    status: int | None = None  # the HTTP status (None over WebSocket)
    refusal: tuple[str, str | None] | None = None  # (error code, run_id it names)
    queued_behind: str | None = None  # the run a ``queued`` event (or part) named
    run_id: str | None = None  # the new turn's run
    text: str = ""
    ended: str | None = None  # complete / cancelled, or the error code of an error event
    first: dict[str, Any] | None = None  # the first event after ``queued`` (SSE, WebSocket)


def _from_events(events: list[dict[str, Any]]) -> Outcome:
    outcome = Outcome(status=200)
    if events and events[0]["type"] == "queued":
        outcome.queued_behind = events[0]["run_id"]
        events = events[1:]
    last = events[-1]
    outcome.first = events[0]
    outcome.text = "".join(e["content"] for e in events if e["type"] == "text_delta")
    outcome.ended = last["status"] if last["type"] == "done" else last["error_code"]
    outcome.run_id = last.get("message_id")
    return outcome


def _refused(response: httpx.Response) -> Outcome:
    body = response.json()
    details = body.get("details") or {}
    return Outcome(status=response.status_code, refusal=(body["error"], details.get("run_id")))


async def send(
    transport: str,
    *,
    app: FastAPI,
    live: httpx.AsyncClient,
    owner: Account,
    slug: str,
    conversation_id: str,
    text: str,
    multitask: str | None,
) -> Outcome:
    """Send ``text`` to the conversation over ``transport`` and read the whole answer."""
    options = {} if multitask is None else {"multitask": multitask}
    body = {"message": text, "conversation_id": conversation_id} | options
    if transport == "rest":
        response = await live.post(f"/v1/agents/{slug}/chat", json=body, headers=owner.headers)
        if response.status_code != 200:
            return _refused(response)
        reply = response.json()
        return Outcome(
            200, text=reply["response"], ended=reply["status"], run_id=reply["message_id"]
        )
    if transport in ("sse", "sse-advanced"):
        path = f"/v1/agents/{slug}/chat/stream" + ("/advanced" if transport != "sse" else "")
        response = await live.post(path, json=body, headers=owner.headers)
        if response.status_code != 200:
            return _refused(response)
        return _from_events(parse_sse(response.text)[0])
    if transport == "ws":
        async with ws_connect(app, f"/v1/agents/{slug}/ws?token={owner.access_token}") as ws:
            await ws.receive_json()  # auth_ok
            frame = {"type": "message", "content": text, "conversation_id": conversation_id}
            await ws.send_json(frame | options)
            events = await receive_until_terminal(ws)
        if events[-1].get("error_code") == "conversation_busy":
            return Outcome(refusal=("conversation_busy", events[-1].get("run_id")))
        return _from_events(events)
    if transport == "ui":
        payload = ui_body(conversation_id, text, on_disconnect="continue", **options)
        response = await live.post(
            f"/v1/agents/{slug}/chat/ui", json=payload, headers=owner.headers
        )
        return _refused(response) if response.status_code != 200 else _from_ui(response.text)
    assert transport == "ag-ui"
    payload = agui_body(conversation_id, text, forwardedProps=options)
    response = await live.post(f"/v1/agents/{slug}/chat/ag-ui", json=payload, headers=owner.headers)
    return _refused(response) if response.status_code != 200 else _from_agui(response.text)


def _from_ui(raw: str) -> Outcome:
    chunks = [c for c in ui_chunks(raw) if isinstance(c, dict)]
    queued = [c["data"]["run_id"] for c in chunks if c["type"] == "data-queued"]
    types = {c["type"] for c in chunks}
    return Outcome(
        status=200,
        queued_behind=queued[0] if queued else None,
        run_id=chunks[0]["messageMetadata"]["run_id"],
        text="".join(c["delta"] for c in chunks if c["type"] == "text-delta"),
        ended="cancelled" if "abort" in types else "complete" if "finish" in types else "error",
    )


def _from_agui(raw: str) -> Outcome:
    events = agui_events(raw)
    queued = [e["value"]["run_id"] for e in events if e["type"] == "CUSTOM"]
    return Outcome(
        status=200,
        queued_behind=queued[0] if queued else None,
        run_id=events[0]["runId"],
        text="".join(e["delta"] for e in events if e["type"] == "TEXT_MESSAGE_CONTENT"),
        ended="complete" if events[-1]["type"] == "RUN_FINISHED" else events[-1].get("code"),
    )


async def runs_with(
    state: AppState, conversation_id: str, status: RunStatus, count: int = 1
) -> None:
    """Until ``count`` runs of the conversation are stored with ``status`` (a polled state
    with a deadline)."""
    deadline = time.monotonic() + 10
    while True:
        async with state.sessions() as session:
            found = await session.scalar(
                select(func.count())
                .select_from(RunRecord)
                .where(
                    RunRecord.conversation_id == uuid.UUID(conversation_id),
                    RunRecord.status == status,
                )
            )
        if found is not None and found >= count:
            return
        assert time.monotonic() < deadline, f"no {count} {status} run(s) in time"
        await asyncio.sleep(0.02)


async def run_status(state: AppState, run_id: str) -> RunStatus:
    async with state.sessions() as session:
        record = await session.get(RunRecord, uuid.UUID(run_id))
    assert record is not None
    return record.status


def seen_by_model(messages: list[ModelMessage]) -> list[str]:
    """The user prompts and reply texts a model request carried, in order."""
    texts: list[str] = []
    for message in messages:
        if isinstance(message, ModelRequest):
            texts += [p.content for p in message.parts if isinstance(p, UserPromptPart)]  # type: ignore[misc]
        elif isinstance(message, ModelResponse):
            texts += [p.content for p in message.parts if isinstance(p, TextPart)]
    return texts
