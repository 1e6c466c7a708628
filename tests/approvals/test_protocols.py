"""Approvals on the standard client protocols: the Vercel AI SDK's tool approval parts (and
its approval response continuing the turn), an AG-UI custom event."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from agentstream.state import AppState
from tests.approvals.conftest import Planner, Tools, planned_agent
from tests.factories import Account
from tests.streaming.test_ui_protocols import agui_body, agui_events, ui_body, ui_chunks


def _approval_response(
    chat_id: str, paused: list[Any], approval_id: str, approved: bool, reason: str | None = None
) -> dict[str, Any]:
    """What ``addToolApprovalResponse`` + ``sendAutomaticallyWhen`` post: the history with the
    paused assistant message last, its tool part ``approval-responded``."""
    call = next(c for c in paused if isinstance(c, dict) and c["type"] == "tool-input-available")
    approval = {"id": approval_id, "approved": approved} | ({"reason": reason} if reason else {})
    assistant = {
        "id": "a1",
        "role": "assistant",
        "parts": [
            {"type": "step-start"},
            {
                "type": f"tool-{call['toolName']}",
                "toolCallId": call["toolCallId"],
                "state": "approval-responded",
                "input": call["input"],
                "approval": approval,
            },
        ],
    }
    user = {"id": "u1", "role": "user", "parts": [{"type": "text", "text": "clean up"}]}
    return {"id": chat_id, "messages": [user, assistant], "trigger": "submit-message"}


async def test_vercel_stream_asks_for_approval_and_the_response_continues_the_turn(
    client: httpx.AsyncClient, state: AppState, owner: Account, tools: Tools
) -> None:
    slug = await planned_agent(client, state, owner, Planner([("delete_file", {"path": "/a"})]))
    chat_id = f"chat-{uuid.uuid4().hex[:8]}"
    path = f"/v1/agents/{slug}/chat/ui"
    response = await client.post(path, json=ui_body(chat_id, "clean up"), headers=owner.headers)
    assert response.status_code == 200, response.text
    paused = ui_chunks(response.text)
    [request] = [c for c in paused if isinstance(c, dict) and c["type"] == "tool-approval-request"]
    assert request["toolCallId"] == "call-0"
    assert paused[-1] == "[DONE]"
    assert tools.deleted == []
    body = _approval_response(chat_id, paused, request["approvalId"], approved=True)
    continued = await client.post(path, json=body, headers=owner.headers)
    assert continued.status_code == 200, continued.text
    chunks = ui_chunks(continued.text)
    [output] = [c for c in chunks if isinstance(c, dict) and c["type"] == "tool-output-available"]
    assert output["toolCallId"] == "call-0"
    assert output["output"] == "deleted /a"
    text = "".join(c["delta"] for c in chunks if isinstance(c, dict) and c["type"] == "text-delta")
    assert text == "Results: delete_file=deleted /a"
    assert tools.deleted == ["/a"]
    again = await client.post(path, json=body, headers=owner.headers)
    assert again.status_code == 409
    made_up = _approval_response(chat_id, paused, "not-ours", approved=True)
    assert (await client.post(path, json=made_up, headers=owner.headers)).status_code == 404


async def test_agui_run_finishes_with_an_interrupt_and_resume_continues_the_turn(
    client: httpx.AsyncClient, state: AppState, owner: Account, tools: Tools
) -> None:
    slug = await planned_agent(client, state, owner, Planner([("delete_file", {"path": "/a"})]))
    thread = f"thread-{uuid.uuid4().hex[:8]}"
    path = f"/v1/agents/{slug}/chat/ag-ui"
    response = await client.post(path, json=agui_body(thread, "clean up"), headers=owner.headers)
    events = agui_events(response.text)
    finished = events[-1]
    assert finished["type"] == "RUN_FINISHED"
    [interrupt] = finished["outcome"]["interrupts"]
    assert interrupt["toolCallId"] == "call-0"
    assert interrupt["reason"] == "tool_call"
    uuid.UUID(interrupt["id"])
    assert not [e for e in events if e["type"] == "CUSTOM"]
    assert tools.deleted == []
    resume = [{"interruptId": interrupt["id"], "status": "resolved", "payload": {"approved": True}}]
    body = agui_body(thread, "clean up", resume=resume)
    continued = agui_events((await client.post(path, json=body, headers=owner.headers)).text)
    [result] = [e for e in continued if e["type"] == "TOOL_CALL_RESULT"]
    assert result["toolCallId"] == "call-0"
    assert result["content"] == "deleted /a"
    assert continued[-1]["type"] == "RUN_FINISHED"
    assert tools.deleted == ["/a"]
    bad = [{"interruptId": interrupt["id"], "status": "resolved", "payload": {"approved": "yes"}}]
    refused = await client.post(
        path, json=agui_body(thread, "x", resume=bad), headers=owner.headers
    )
    assert refused.status_code == 422
