"""Human approval of tool calls (SPEC "Human approval of tool calls"): a call that needs
approval pauses the run; its owner's decisions continue the turn as one reply."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from pydantic_ai.messages import ModelRequest, ToolReturnPart
from sqlalchemy import select

from agentstream.models import Message, MessageRole, MessageStatus, RunRecord, RunStatus
from agentstream.state import AppState
from tests.approvals.conftest import Planner, Tools, of_type, planned_agent, stream
from tests.factories import Account, add_member, register
from tests.streaming.scripted import parse_sse


async def _paused(
    client: httpx.AsyncClient, state: AppState, owner: Account, planner: Planner
) -> tuple[str, list[dict[str, Any]]]:
    slug = await planned_agent(client, state, owner, planner)
    return slug, await stream(client, owner, slug, {"message": "clean up"})


async def _messages(state: AppState, conversation_id: str) -> list[Message]:
    async with state.sessions() as session:
        rows = await session.scalars(
            select(Message)
            .where(Message.conversation_id == uuid.UUID(conversation_id))
            .order_by(Message.created_at)
        )
        return list(rows)


async def _run_status(state: AppState, run_id: str) -> RunStatus:
    async with state.sessions() as session:
        status = await session.scalar(
            select(RunRecord.status).where(RunRecord.id == uuid.UUID(run_id))
        )
    assert status is not None
    return status


def _returns(planner: Planner) -> dict[str, ToolReturnPart]:
    last = planner.seen[-1][-1]
    assert isinstance(last, ModelRequest)
    return {p.tool_name: p for p in last.parts if isinstance(p, ToolReturnPart)}


async def test_a_call_needing_approval_pauses_the_run(
    client: httpx.AsyncClient, state: AppState, owner: Account, tools: Tools
) -> None:
    planner = Planner([("delete_file", {"path": "/tmp/a"})])
    _, events = await _paused(client, state, owner, planner)
    types = [e["type"] for e in events]
    assert types[-3:] == ["approval_required", "usage", "done"]
    call, approval = of_type(events, "tool_call")[0], of_type(events, "approval_required")[0]
    assert call["tool_name"] == "delete_file"
    assert approval["tool_call_id"] == call["tool_call_id"] == "call-0"
    assert approval["tool_name"] == "delete_file"
    assert approval["tool_args"] == {"path": "/tmp/a"}
    uuid.UUID(approval["approval_id"])
    done = events[-1]
    assert done["status"] == "awaiting_approval"
    assert tools.deleted == []
    assert len(planner.seen) == 1
    assert not of_type(events, "tool_result")

    conversation_id = done["conversation_id"]
    stored = await _messages(state, conversation_id)
    assert [m.status for m in stored] == [MessageStatus.complete, MessageStatus.awaiting_approval]
    assert stored[1].content == "Let me do that."
    assert await _run_status(state, done["message_id"]) is RunStatus.awaiting_approval
    run = await client.get(f"/v1/runs/{done['message_id']}", headers=owner.headers)
    assert run.json()["status"] == "awaiting_approval"

    shown = await client.get(f"/v1/conversations/{conversation_id}", headers=owner.headers)
    assert shown.status_code == 200
    pending = shown.json()["pending_approvals"]
    assert [p["approval_id"] for p in pending] == [approval["approval_id"]]
    assert pending[0]["status"] == "pending"
    assert pending[0]["approved"] is None
    assert pending[0]["run_id"] == done["message_id"]
    assert pending[0]["tool_args"] == {"path": "/tmp/a"}


async def test_approving_runs_the_tool_and_continues_the_turn(
    client: httpx.AsyncClient, state: AppState, owner: Account, tools: Tools
) -> None:
    planner = Planner([("delete_file", {"path": "/tmp/a"})])
    slug, events = await _paused(client, state, owner, planner)
    done, approval = events[-1], of_type(events, "approval_required")[0]
    decided = await client.post(
        f"/v1/runs/{done['message_id']}/approvals",
        json={"decisions": [{"approval_id": approval["approval_id"], "approved": True}]},
        headers=owner.headers,
    )
    assert decided.status_code == 202, decided.text
    run_id = decided.json()["run_id"]
    assert decided.json()["status"] == "running"
    followed = await client.get(f"/v1/runs/{run_id}/events", headers=owner.headers)
    continued, _ = parse_sse(followed.text)
    result = of_type(continued, "tool_result")[0]  # type: ignore[arg-type]
    assert result["tool_call_id"] == "call-0"
    assert result["tool_result_content"] == "deleted /tmp/a"
    assert continued[-1]["type"] == "done"
    assert continued[-1]["status"] == "complete"
    assert tools.deleted == ["/tmp/a"]
    assert _returns(planner)["delete_file"].content == "deleted /tmp/a"
    # The model was asked again with the paused turn as it was: its prompt, text and call.
    assert "clean up" in str(planner.seen[-1][0])

    stored = await _messages(state, done["conversation_id"])
    assert [(m.role, m.status) for m in stored] == [
        (MessageRole.user, MessageStatus.complete),
        (MessageRole.assistant, MessageStatus.awaiting_approval),
        (MessageRole.assistant, MessageStatus.complete),
    ]
    assert stored[2].id == uuid.UUID(run_id)
    assert stored[2].content == "Results: delete_file=deleted /tmp/a"
    assert stored[2].tool_calls[0]["tool_result_content"] == "deleted /tmp/a"

    shown = (
        await client.get(f"/v1/conversations/{done['conversation_id']}", headers=owner.headers)
    ).json()
    assert shown["pending_approvals"] == []
    [decision] = shown["approvals"]
    assert decision["status"] == "approved"
    assert decision["approved"] is True
    assert decision["decided_by"] == str(owner.user_id)
    assert decision["decided_at"]

    # The next turn sees the whole conversation, and the conversation is not busy.
    await stream(
        client, owner, slug, {"message": "thanks", "conversation_id": done["conversation_id"]}
    )


async def test_denying_tells_the_model_why_in_a_chat_request(
    client: httpx.AsyncClient, state: AppState, owner: Account, tools: Tools
) -> None:
    planner = Planner([("delete_file", {"path": "/etc"})])
    slug, events = await _paused(client, state, owner, planner)
    approval = of_type(events, "approval_required")[0]
    decision = {"approval_id": approval["approval_id"], "approved": False, "reason": "too risky"}
    continued = await stream(client, owner, slug, {"decisions": [decision]})
    assert continued[0]["run_id"] != events[-1]["message_id"]
    result = of_type(continued, "tool_result")[0]
    assert result["tool_result_content"] == "The user denied this call: too risky"
    assert continued[-1]["status"] == "complete"
    assert tools.deleted == []
    denied = _returns(planner)["delete_file"]
    assert denied.content == "The user denied this call: too risky"
    assert denied.outcome == "denied"
    shown = (
        await client.get(
            f"/v1/conversations/{events[-1]['conversation_id']}", headers=owner.headers
        )
    ).json()
    assert shown["approvals"][0]["approved"] is False
    assert shown["approvals"][0]["reason"] == "too risky"


async def test_calls_not_needing_approval_run_at_once_and_all_results_reach_the_model(
    client: httpx.AsyncClient, state: AppState, owner: Account, tools: Tools
) -> None:
    planner = Planner([("lookup", {"query": "x"}), ("delete_file", {"path": "/a"})])
    slug, events = await _paused(client, state, owner, planner)
    assert tools.looked_up == ["x"]
    assert tools.deleted == []
    assert [e["tool_call_id"] for e in of_type(events, "tool_result")] == ["call-0"]
    approval = of_type(events, "approval_required")[0]
    decisions = [{"approval_id": approval["approval_id"], "approved": True}]
    continued = await stream(client, owner, slug, {"decisions": decisions})
    assert continued[-1]["status"] == "complete"
    assert tools.looked_up == ["x"]  # not run twice
    returns = _returns(planner)
    assert returns["lookup"].content == "found x"
    assert returns["delete_file"].content == "deleted /a"


async def test_every_call_of_the_turn_must_be_decided_at_once(
    client: httpx.AsyncClient, state: AppState, owner: Account, tools: Tools
) -> None:
    planner = Planner([("delete_file", {"path": "/a"}), ("delete_file", {"path": "/b"})])
    _, events = await _paused(client, state, owner, planner)
    approvals = of_type(events, "approval_required")
    assert len({a["approval_id"] for a in approvals}) == 2
    run_id = events[-1]["message_id"]
    one = [{"approval_id": approvals[0]["approval_id"], "approved": True}]
    partial = await client.post(
        f"/v1/runs/{run_id}/approvals", json={"decisions": one}, headers=owner.headers
    )
    assert partial.status_code == 422, partial.text
    assert partial.json()["error"] == "validation_error"
    both = [*one, {"approval_id": approvals[1]["approval_id"], "approved": False}]
    decided = await client.post(
        f"/v1/runs/{run_id}/approvals", json={"decisions": both}, headers=owner.headers
    )
    assert decided.status_code == 202
    followed = await client.get(
        f"/v1/runs/{decided.json()['run_id']}/events", headers=owner.headers
    )
    assert parse_sse(followed.text)[0][-1]["status"] == "complete"
    assert tools.deleted == ["/a"]


async def test_a_second_decision_is_409_and_unknown_or_foreign_ones_404(
    client: httpx.AsyncClient, state: AppState, owner: Account, tools: Tools
) -> None:
    planner = Planner([("delete_file", {"path": "/a"})])
    slug, events = await _paused(client, state, owner, planner)
    run_id, approval_id = events[-1]["message_id"], events[-2 - 1]["approval_id"]
    decisions = [{"approval_id": approval_id, "approved": True}]
    path = f"/v1/runs/{run_id}/approvals"

    teammate, stranger = await register(client), await register(client)
    await add_member(client, owner, teammate, "member")
    as_teammate = await client.post(
        path, json={"decisions": decisions}, headers=teammate.in_team(owner.team_id)
    )
    assert as_teammate.status_code == 404  # only the owner decides (and sees) the run
    for account, headers in (
        (teammate, teammate.in_team(owner.team_id)),
        (stranger, stranger.headers),
    ):
        in_chat = await client.post(
            f"/v1/agents/{slug}/chat", json={"decisions": decisions}, headers=headers
        )
        assert in_chat.status_code == 404, (account.email, in_chat.text)
        assert in_chat.json()["error"] in ("approval_not_found", "agent_not_found")
    teammate_chat = await client.post(
        f"/v1/agents/{slug}/chat",
        json={"decisions": decisions},
        headers=teammate.in_team(owner.team_id),
    )
    assert teammate_chat.json()["error"] == "approval_not_found"
    shown = await client.get(
        f"/v1/conversations/{events[-1]['conversation_id']}",
        headers=teammate.in_team(owner.team_id),
    )
    assert shown.status_code == 404

    unknown = [{"approval_id": str(uuid.uuid4()), "approved": True}]
    missing = await client.post(path, json={"decisions": unknown}, headers=owner.headers)
    assert missing.status_code == 404
    assert missing.json()["error"] == "approval_not_found"

    first = await client.post(path, json={"decisions": decisions}, headers=owner.headers)
    assert first.status_code == 202
    await client.get(f"/v1/runs/{first.json()['run_id']}/events", headers=owner.headers)
    again = await client.post(path, json={"decisions": decisions}, headers=owner.headers)
    assert again.status_code == 409
    assert again.json()["error"] == "approval_already_decided"
    assert tools.deleted == ["/a"]


async def test_non_streaming_chat_returns_the_pending_approvals_and_takes_decisions(
    client: httpx.AsyncClient, state: AppState, owner: Account, tools: Tools
) -> None:
    planner = Planner([("delete_file", {"path": "/a"})])
    slug = await planned_agent(client, state, owner, planner)
    paused = await client.post(
        f"/v1/agents/{slug}/chat", json={"message": "go"}, headers=owner.headers
    )
    assert paused.status_code == 200, paused.text
    body = paused.json()
    assert body["status"] == "awaiting_approval"
    [pending] = body["pending_approvals"]
    assert pending["tool_name"] == "delete_file"
    assert pending["tool_args"] == {"path": "/a"}
    decisions = [{"approval_id": pending["approval_id"], "approved": True}]
    done = await client.post(
        f"/v1/agents/{slug}/chat", json={"decisions": decisions}, headers=owner.headers
    )
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "complete"
    assert done.json()["response"] == "Results: delete_file=deleted /a"
    assert done.json()["conversation_id"] == body["conversation_id"]


async def test_a_request_with_both_or_neither_message_and_decisions_is_422(
    client: httpx.AsyncClient, state: AppState, owner: Account, tools: Tools
) -> None:
    slug = await planned_agent(client, state, owner, Planner([]))
    decisions = [{"approval_id": str(uuid.uuid4()), "approved": True}]
    for body in ({"message": "x", "decisions": decisions}, {}, {"decisions": []}):
        response = await client.post(f"/v1/agents/{slug}/chat", json=body, headers=owner.headers)
        assert response.status_code == 422, body


@pytest.mark.parametrize("settings_overrides", [{"approval_ttl_s": 0}])
async def test_an_expired_approval_is_denied_and_no_longer_busies_the_conversation(
    client: httpx.AsyncClient, state: AppState, owner: Account, tools: Tools
) -> None:
    planner = Planner([("delete_file", {"path": "/a"})])
    slug, events = await _paused(client, state, owner, planner)
    done, approval = events[-1], of_type(events, "approval_required")[0]
    decisions = [{"approval_id": approval["approval_id"], "approved": True}]
    late = await client.post(
        f"/v1/runs/{done['message_id']}/approvals",
        json={"decisions": decisions},
        headers=owner.headers,
    )
    assert late.status_code == 409
    assert late.json()["error"] == "approval_already_decided"
    shown = (
        await client.get(f"/v1/conversations/{done['conversation_id']}", headers=owner.headers)
    ).json()
    assert shown["pending_approvals"] == []
    assert shown["approvals"][0]["status"] == "expired"
    assert shown["approvals"][0]["approved"] is False
    next_turn = await stream(
        client, owner, slug, {"message": "next", "conversation_id": done["conversation_id"]}
    )
    assert next_turn[-1]["type"] == "done"
    assert tools.deleted == []
