"""Pending approvals make a conversation busy; decisions travel on WebSocket too; pending
approvals survive a restart (a new state over the same database decides them)."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from httpx_sse import EventSource, aconnect_sse

from agentstream.app import build_state, create_app
from agentstream.settings import Settings
from agentstream.state import AppState
from tests.approvals.conftest import Planner, Tools, of_type, planned_agent, stream
from tests.factories import Account
from tests.live import serve_in_loop
from tests.streaming.scripted import parse_sse
from tests.streaming.wsclient import receive_until_terminal, ws_connect


async def test_pending_approvals_make_the_conversation_busy(
    client: httpx.AsyncClient, state: AppState, owner: Account, tools: Tools
) -> None:
    planner = Planner([("delete_file", {"path": "/a"})])
    slug = await planned_agent(client, state, owner, planner)
    events = await stream(client, owner, slug, {"message": "go"})
    approval_id = of_type(events, "approval_required")[0]["approval_id"]
    conversation_id = events[-1]["conversation_id"]
    path = f"/v1/agents/{slug}/chat/stream/advanced"
    for multitask in ("reject", "enqueue"):
        refused = await client.post(
            path,
            json={"message": "two", "conversation_id": conversation_id, "multitask": multitask},
            headers=owner.headers,
        )
        assert refused.status_code == 409, refused.text
        assert refused.json()["error"] == "conversation_busy"
        assert refused.json()["details"] == {"approval_ids": [approval_id]}


async def test_interrupt_denies_pending_approvals_as_superseded(
    client: httpx.AsyncClient, state: AppState, owner: Account, tools: Tools
) -> None:
    planner = Planner([("delete_file", {"path": "/a"})])
    slug = await planned_agent(client, state, owner, planner)
    events = await stream(client, owner, slug, {"message": "go"})
    approval_id = of_type(events, "approval_required")[0]["approval_id"]
    conversation_id = events[-1]["conversation_id"]
    planner.calls = []  # the new turn just answers
    after = await stream(
        client,
        owner,
        slug,
        {"message": "never mind", "conversation_id": conversation_id, "multitask": "interrupt"},
    )
    assert after[-1]["type"] == "done"
    assert after[-1]["status"] == "complete"
    shown = (await client.get(f"/v1/conversations/{conversation_id}", headers=owner.headers)).json()
    assert shown["pending_approvals"] == []
    [decision] = shown["approvals"]
    assert decision["status"] == "denied"
    assert decision["reason"] == "superseded"
    late = await client.post(
        f"/v1/runs/{events[-1]['message_id']}/approvals",
        json={"decisions": [{"approval_id": approval_id, "approved": True}]},
        headers=owner.headers,
    )
    assert late.status_code == 409
    assert tools.deleted == []


async def test_decisions_over_websocket_stream_the_continuation(
    app: FastAPI, client: httpx.AsyncClient, state: AppState, owner: Account, tools: Tools
) -> None:
    planner = Planner([("delete_file", {"path": "/a"})])
    slug = await planned_agent(client, state, owner, planner)
    async with ws_connect(app, f"/v1/agents/{slug}/ws?token={owner.access_token}") as ws:
        assert (await ws.receive_json())["type"] == "auth_ok"
        await ws.send_json({"type": "message", "content": "go"})
        paused = await receive_until_terminal(ws)
        assert paused[-1]["status"] == "awaiting_approval"
        approval = of_type(paused, "approval_required")[0]
        decisions = [{"approval_id": approval["approval_id"], "approved": True}]
        conversation_id = paused[-1]["conversation_id"]
        await ws.send_json(
            {"type": "message", "content": "two", "conversation_id": conversation_id}
        )
        busy = await ws.receive_json()
        assert busy["error_code"] == "conversation_busy"
        assert busy["approval_ids"] == [approval["approval_id"]]
        await ws.send_json({"type": "message", "decisions": decisions})
        continued = await receive_until_terminal(ws)
        assert of_type(continued, "tool_result")[0]["tool_result_content"] == "deleted /a"
        assert continued[-1]["status"] == "complete"
        await ws.send_json({"type": "message", "decisions": decisions})
        again = await receive_until_terminal(ws)
        assert again[-1]["error_code"] == "approval_already_decided"
    assert tools.deleted == ["/a"]


async def test_pending_approvals_survive_a_restart(
    client: httpx.AsyncClient, state: AppState, settings: Settings, owner: Account, tools: Tools
) -> None:
    planner = Planner([("delete_file", {"path": "/a"})])
    slug = await planned_agent(client, state, owner, planner)
    events = await stream(client, owner, slug, {"message": "go"})
    approval_id = of_type(events, "approval_required")[0]["approval_id"]
    done = events[-1]
    # Another process over the same database: nothing of the first one's memory is shared.
    async with build_state(settings) as restarted:
        restarted.models.register(planner.name, planner.model())
        restarted.tools.register(tools.source)
        app = create_app(settings)
        app.state.agentstream = restarted
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as other:
            shown = (
                await other.get(
                    f"/v1/conversations/{done['conversation_id']}", headers=owner.headers
                )
            ).json()
            assert [p["approval_id"] for p in shown["pending_approvals"]] == [approval_id]
            decided = await other.post(
                f"/v1/runs/{done['message_id']}/approvals",
                json={"decisions": [{"approval_id": approval_id, "approved": True}]},
                headers=owner.headers,
            )
            assert decided.status_code == 202
            followed = await other.get(
                f"/v1/runs/{decided.json()['run_id']}/events", headers=owner.headers
            )
            continued, _ = parse_sse(followed.text)
            assert continued[-1]["status"] == "complete"
    assert tools.deleted == ["/a"]


@pytest.mark.parametrize("settings_overrides", [{"approval_ttl_s": 3600}])
async def test_the_ttl_setting_is_what_expiry_uses(
    client: httpx.AsyncClient, state: AppState, owner: Account, tools: Tools
) -> None:
    planner = Planner([("delete_file", {"path": "/a"})])
    slug = await planned_agent(client, state, owner, planner)
    events = await stream(client, owner, slug, {"message": "go"})
    shown = (
        await client.get(
            f"/v1/conversations/{events[-1]['conversation_id']}", headers=owner.headers
        )
    ).json()
    [pending] = shown["pending_approvals"]
    created = datetime.fromisoformat(pending["created_at"])
    expires = datetime.fromisoformat(pending["expires_at"])
    assert (expires - created).total_seconds() == 3600


async def _events(source: EventSource) -> list[dict[str, Any]]:
    return [json.loads(sse.data) async for sse in source.aiter_sse()]


async def test_a_turn_queued_behind_a_run_that_pauses_supersedes_its_approvals(
    app: FastAPI, client: httpx.AsyncClient, state: AppState, owner: Account, tools: Tools
) -> None:
    planner = Planner([("delete_file", {"path": "/a"})], hold=asyncio.Event())
    slug = await planned_agent(client, state, owner, planner)
    path = f"/v1/agents/{slug}/chat/stream/advanced"
    async with (
        serve_in_loop(app) as url,
        httpx.AsyncClient(base_url=url, timeout=30) as live,
        aconnect_sse(live, "POST", path, json={"message": "go"}, headers=owner.headers) as first,
    ):
        conversation_id = first.response.headers["X-Conversation-Id"]
        first_events = asyncio.create_task(_events(first))
        await asyncio.wait_for(planner.started.wait(), 10)
        planner.calls = []  # the queued turn just answers
        body = {"message": "next", "conversation_id": conversation_id, "multitask": "enqueue"}
        async with aconnect_sse(live, "POST", path, json=body, headers=owner.headers) as second:
            frames = second.aiter_sse()
            queued = json.loads((await anext(frames)).data)
            assert queued["type"] == "queued"
            assert planner.hold is not None
            planner.hold.set()
            rest = [json.loads(sse.data) async for sse in frames]
        paused = await asyncio.wait_for(first_events, 10)
    assert paused[-1]["status"] == "awaiting_approval"
    assert rest[-1]["status"] == "complete"
    shown = (await client.get(f"/v1/conversations/{conversation_id}", headers=owner.headers)).json()
    assert shown["pending_approvals"] == []
    assert shown["approvals"][0]["reason"] == "superseded"
    assert tools.deleted == []


async def test_arguments_that_fail_the_tools_schema_go_back_to_the_model_not_to_a_person(
    client: httpx.AsyncClient, state: AppState, owner: Account, tools: Tools
) -> None:
    planner = Planner([("delete_file", {"wrong": 1})])
    slug = await planned_agent(client, state, owner, planner)
    events = await stream(client, owner, slug, {"message": "go"})
    assert not of_type(events, "approval_required")
    assert events[-1]["status"] == "complete"
    [retry] = of_type(events, "tool_result")
    assert "path" in retry["tool_result_content"]  # the validation error names the field
    assert tools.deleted == []
