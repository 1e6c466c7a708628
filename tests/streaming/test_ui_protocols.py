"""The standard client protocols in-process: Vercel AI SDK UI message stream and AG-UI.

Request parsing, the client-id conversation rules, tenancy, resume, and the encoded event
sequences for a scripted model with a tool call. The real JS clients are in tests/node.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.factories import Account, add_member, create_agent, register
from tests.streaming.live import live_sse
from tests.streaming.scripted import Script

MakeAgent = Callable[..., Any]


def ui_body(chat_id: str, text: str, **extra: Any) -> dict[str, Any]:
    """What ``DefaultChatTransport`` posts for a new user message (history included)."""
    history = [
        {"id": "u0", "role": "user", "parts": [{"type": "text", "text": "earlier"}]},
        {"id": "a0", "role": "assistant", "parts": [{"type": "text", "text": "ignored"}]},
    ]
    new = {"id": "u1", "role": "user", "parts": [{"type": "text", "text": text}]}
    return {"id": chat_id, "messages": [*history, new], "trigger": "submit-message"} | extra


def agui_body(thread_id: str, text: str, **extra: Any) -> dict[str, Any]:
    """What ``HttpAgent`` posts (``RunAgentInput``)."""
    return {
        "threadId": thread_id,
        "runId": "client-run-1",
        "state": {},
        "messages": [{"id": "m1", "role": "user", "content": text}],
        "tools": [],
        "context": [],
        "forwardedProps": {},
    } | extra


def ui_chunks(body: str) -> list[Any]:
    """The ``data:`` payloads of a UI message stream (``[DONE]`` as the string)."""
    assert body.endswith("\n\n")
    chunks: list[Any] = []
    for frame in body[:-2].split("\n\n"):
        assert frame.startswith("data: "), frame
        payload = frame[len("data: ") :]
        chunks.append(payload if payload == "[DONE]" else json.loads(payload))
    return chunks


def agui_events(body: str) -> list[dict[str, Any]]:
    return [json.loads(f[len("data: ") :]) for f in body.strip().split("\n\n")]


async def _messages(client: httpx.AsyncClient, owner: Account, conversation_id: str) -> list[Any]:
    response = await client.get(
        f"/v1/conversations/{conversation_id}/messages", headers=owner.headers
    )
    items: list[Any] = response.json()["items"]
    return items


async def test_ui_stream_encodes_tool_call_text_and_finish(
    client: httpx.AsyncClient, owner: Account, scripted_agent: MakeAgent
) -> None:
    skill = (await client.get("/v1/skills", headers=owner.headers)).json()["items"][0]["name"]
    script = Script(tokens=["Hi", " there"], tool_call=("load_skill", {"skill_name": skill}))
    slug = await scripted_agent(script)
    response = await client.post(
        f"/v1/agents/{slug}/chat/ui", json=ui_body("chat-a", "hello"), headers=owner.headers
    )
    assert response.status_code == 200, response.text
    assert response.headers["x-vercel-ai-ui-message-stream"] == "v1"
    assert response.headers["content-type"].startswith("text/event-stream")
    chunks = ui_chunks(response.text)
    types = [c if isinstance(c, str) else c["type"] for c in chunks]
    assert types == [
        "start",
        "start-step",
        "tool-input-start",
        "tool-input-delta",
        "tool-input-available",
        "tool-output-available",
        "finish-step",
        "start-step",
        "text-start",
        "text-delta",
        "text-delta",
        "text-end",
        "finish-step",
        "finish",
        "[DONE]",
    ]
    run_id = response.headers["x-run-id"]
    assert chunks[0]["messageId"] == run_id
    assert chunks[0]["messageMetadata"]["conversation_id"] == response.headers["x-conversation-id"]
    assert chunks[4] | {"providerMetadata": None} == {
        "type": "tool-input-available",
        "toolCallId": "call-1",
        "toolName": "load_skill",
        "input": {"skill_name": skill},
        "providerMetadata": None,
    }
    assert chunks[5]["output"].startswith(f"# Skill: {skill}")
    assert "".join(c["delta"] for c in chunks[:-1] if c["type"] == "text-delta") == "Hi there"
    # The model saw only the new user text (the server holds the history).
    first_request = script.calls[0][0]
    assert [p.content for m in first_request for p in m.parts] == ["hello"]


async def test_ui_chat_id_names_the_conversation(
    client: httpx.AsyncClient, owner: Account, scripted_agent: MakeAgent, script: Script
) -> None:
    slug = await scripted_agent(script)
    path = f"/v1/agents/{slug}/chat/ui"
    first = await client.post(path, json=ui_body("my-chat", "one"), headers=owner.headers)
    second = await client.post(path, json=ui_body("my-chat", "two"), headers=owner.headers)
    conversation_id = first.headers["x-conversation-id"]
    assert second.headers["x-conversation-id"] == conversation_id
    assert len(await _messages(client, owner, conversation_id)) == 4
    # The second turn's model call got the first turn as history.
    assert len(script.calls[1][0]) == 3  # user, assistant, new user
    # A conversation's own UUID continues it too.
    third = await client.post(path, json=ui_body(conversation_id, "three"), headers=owner.headers)
    assert third.headers["x-conversation-id"] == conversation_id
    # Another id starts another conversation, with that client id.
    other = await client.post(path, json=ui_body("other-chat", "x"), headers=owner.headers)
    assert other.headers["x-conversation-id"] != conversation_id
    # An unknown UUID is a client id like any other: created once, then continued.
    fresh = str(uuid.uuid4())
    a = await client.post(path, json=ui_body(fresh, "x"), headers=owner.headers)
    b = await client.post(path, json=ui_body(fresh, "y"), headers=owner.headers)
    assert a.headers["x-conversation-id"] == b.headers["x-conversation-id"] != fresh


async def test_client_ids_are_per_user_and_agent(
    client: httpx.AsyncClient, owner: Account, scripted_agent: MakeAgent, script: Script
) -> None:
    slug = await scripted_agent(script)
    other_slug = await scripted_agent(script, slug="other")
    colleague = await register(client, "colleague")
    await add_member(client, owner, colleague, "member")
    mine = await client.post(
        f"/v1/agents/{slug}/chat/ui", json=ui_body("shared-id", "x"), headers=owner.headers
    )
    theirs = await client.post(
        f"/v1/agents/{slug}/chat/ui",
        json=ui_body("shared-id", "x"),
        headers=colleague.in_team(owner.team_id),
    )
    other_agent = await client.post(
        f"/v1/agents/{other_slug}/chat/ui", json=ui_body("shared-id", "x"), headers=owner.headers
    )
    ids = {r.headers["x-conversation-id"] for r in (mine, theirs, other_agent)}
    assert len(ids) == 3


@pytest.mark.parametrize("protocol", ["ui", "ag-ui"])
async def test_foreign_conversation_id_is_not_found(
    client: httpx.AsyncClient, owner: Account, scripted_agent: MakeAgent, protocol: str
) -> None:
    """Another user's (same team) or another team's conversation UUID is 404 on both protocols,
    never a fresh conversation."""
    slug = await scripted_agent(Script())
    chat = await client.post(
        f"/v1/agents/{slug}/chat", json={"message": "x"}, headers=owner.headers
    )
    foreign = chat.json()["conversation_id"]
    colleague = await register(client, "colleague")
    await add_member(client, owner, colleague, "member")
    stranger = await register(client, "stranger")
    await create_agent(client, stranger, slug)
    body = ui_body(foreign, "hi") if protocol == "ui" else agui_body(foreign, "hi")
    for headers in (colleague.in_team(owner.team_id), stranger.headers):
        response = await client.post(
            f"/v1/agents/{slug}/chat/{protocol}", json=body, headers=headers
        )
        assert response.status_code == 404, response.text
        assert response.json()["error"] == "conversation_not_found"
    resume = await client.get(
        f"/v1/agents/{slug}/chat/ui/{foreign}/stream", headers=colleague.in_team(owner.team_id)
    )
    assert resume.status_code == 404
    assert resume.json()["error"] == "conversation_not_found"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (ui_body("c", "   "), "message"),
        (ui_body("x" * 201, "hi"), "client_id"),
        (ui_body("c", "hi", trigger="regenerate-message"), "trigger"),
        (ui_body("c", "hi") | {"messages": []}, "messages"),
        (ui_body("c", "hi", on_disconnect="later"), "on_disconnect"),
        ({"messages": []}, "id"),
    ],
)
async def test_ui_request_parsing_rejects_bad_input(
    client: httpx.AsyncClient,
    owner: Account,
    scripted_agent: MakeAgent,
    body: dict[str, Any],
    field: str,
) -> None:
    slug = await scripted_agent(Script())
    response = await client.post(f"/v1/agents/{slug}/chat/ui", json=body, headers=owner.headers)
    assert response.status_code == 422, response.text
    error = response.json()
    assert error["error"] == "validation_error"
    assert any(field in map(str, e["loc"]) for e in error["details"]["errors"]), error


async def test_ui_resume_is_204_when_nothing_runs(
    client: httpx.AsyncClient, owner: Account, scripted_agent: MakeAgent
) -> None:
    slug = await scripted_agent(Script())
    path = f"/v1/agents/{slug}/chat/ui"
    never = await client.get(f"{path}/never-used/stream", headers=owner.headers)
    assert never.status_code == 204
    await client.post(path, json=ui_body("done-chat", "x"), headers=owner.headers)
    finished = await client.get(f"{path}/done-chat/stream", headers=owner.headers)
    assert finished.status_code == 204


async def test_ui_resume_replays_the_running_reply_from_its_start(
    app: FastAPI, owner: Account, scripted_agent: MakeAgent
) -> None:
    script = Script(tokens=["a", "b", "c"], hold_after=1)
    slug = await scripted_agent(script)
    body = ui_body("live-chat", "x", on_disconnect="continue")
    async with live_sse(app, f"/v1/agents/{slug}/chat/ui", body, owner.headers) as first:
        await asyncio.wait_for(script.started.wait(), 10)
        first.disconnect()  # a reload: the run carries on ("continue")
    resume_path = f"/v1/agents/{slug}/chat/ui/live-chat/stream"
    async with live_sse(app, resume_path, None, owner.headers, method="GET") as resumed:
        assert resumed.status == 200
        frames = [await resumed.next_frame()]  # replayed from the start while still held
        script.release.set()
        while (frame := await resumed.next_frame()) is not None:
            frames.append(frame)
    chunks = ui_chunks("".join(f"{f}\n\n" for f in frames if f is not None))
    assert chunks[0]["type"] == "start"
    deltas = [c["delta"] for c in chunks[:-1] if c["type"] == "text-delta"]
    assert "".join(deltas) == "abc"
    assert chunks[-2]["type"] == "finish"


async def test_ui_disconnect_cancels_by_default_and_keeps_partial_text(
    app: FastAPI, client: httpx.AsyncClient, owner: Account, scripted_agent: MakeAgent
) -> None:
    script = Script(tokens=["partial", " never"], hold_after=1)
    slug = await scripted_agent(script)
    path = f"/v1/agents/{slug}/chat/ui"
    async with live_sse(app, path, ui_body("stop-chat", "x"), owner.headers) as sse:
        await asyncio.wait_for(script.started.wait(), 10)
        sse.disconnect()  # the SDK's stop() aborts the fetch
        await asyncio.wait_for(script.cancelled.wait(), 10)
    conversations = (await client.get("/v1/conversations", headers=owner.headers)).json()
    messages = await _messages(client, owner, conversations["items"][0]["id"])
    assert messages[-1]["status"] == "cancelled"
    assert messages[-1]["content"] == "partial"


async def test_agui_encodes_run_tool_call_text_and_finish(
    client: httpx.AsyncClient, owner: Account, scripted_agent: MakeAgent
) -> None:
    skill = (await client.get("/v1/skills", headers=owner.headers)).json()["items"][0]["name"]
    script = Script(tokens=["Hi", " there"], tool_call=("load_skill", {"skill_name": skill}))
    slug = await scripted_agent(script)
    response = await client.post(
        f"/v1/agents/{slug}/chat/ag-ui",
        json=agui_body("thread-1", "hello"),
        headers=owner.headers | {"Accept": "text/event-stream"},
    )
    assert response.status_code == 200, response.text
    events = agui_events(response.text)
    assert [e["type"] for e in events] == [
        "RUN_STARTED",
        # The encoder opens (and closes) the assistant message a tool call's parentMessageId names.
        "TEXT_MESSAGE_START",
        "TEXT_MESSAGE_END",
        "TOOL_CALL_START",
        "TOOL_CALL_ARGS",
        "TOOL_CALL_END",
        "TOOL_CALL_RESULT",
        "TEXT_MESSAGE_START",
        "TEXT_MESSAGE_CONTENT",
        "TEXT_MESSAGE_CONTENT",
        "TEXT_MESSAGE_END",
        "RUN_FINISHED",
    ]
    assert events[0]["threadId"] == "thread-1"
    assert events[0]["runId"] == response.headers["x-run-id"]
    assert events[3]["toolCallName"] == "load_skill"
    assert events[3]["parentMessageId"] == events[1]["messageId"]
    assert json.loads(events[4]["delta"]) == {"skill_name": skill}
    assert events[6]["content"].startswith(f"# Skill: {skill}")
    # Same thread id, same conversation.
    again = await client.post(
        f"/v1/agents/{slug}/chat/ag-ui", json=agui_body("thread-1", "more"), headers=owner.headers
    )
    assert again.headers["x-conversation-id"] == response.headers["x-conversation-id"]


async def test_agui_model_failure_is_run_error(
    client: httpx.AsyncClient, owner: Account, scripted_agent: MakeAgent
) -> None:
    slug = await scripted_agent(Script(tokens=["a", "b"], fail_after=1))
    response = await client.post(
        f"/v1/agents/{slug}/chat/ag-ui", json=agui_body("t-err", "x"), headers=owner.headers
    )
    events = agui_events(response.text)
    assert events[0]["type"] == "RUN_STARTED"
    assert events[-1]["type"] == "RUN_ERROR"
    assert events[-1]["code"] == "model_error"
    assert "RUN_FINISHED" not in [e["type"] for e in events]


async def test_agui_rejects_input_without_a_user_message(
    client: httpx.AsyncClient, owner: Account, scripted_agent: MakeAgent
) -> None:
    slug = await scripted_agent(Script())
    body = agui_body("t", "x") | {"messages": []}
    response = await client.post(f"/v1/agents/{slug}/chat/ag-ui", json=body, headers=owner.headers)
    assert response.status_code == 422
    assert response.json()["error"] == "validation_error"
