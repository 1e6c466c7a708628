"""Tool approval through the real JS clients, unmodified: the ``ai`` package's chat (what
``useChat`` runs) approves and denies with ``addToolApprovalResponse``; the tool is an MCP
server's whose ``approval`` is ``"always"``."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.server import ServerProcess
from tests.e2e.test_node_clients import node_clients, run_node  # noqa: F401
from tests.factories import Account, create_agent, register
from tests.fakes.mcp_server import ToolServer, serve_mcp
from tests.fakes.openai_server import FakeOpenAI, Reply, ToolCall

pytestmark = pytest.mark.e2e


@pytest.fixture
async def mcp_url() -> AsyncIterator[tuple[str, ToolServer]]:
    tools = ToolServer()
    async with serve_mcp(tools) as url:
        yield url, tools


async def _guarded_agent(
    http: httpx.AsyncClient, upstream: FakeOpenAI, url: str
) -> tuple[Account, str]:
    """An account whose agent calls ``srv__echo`` (approval ``"always"``) on a fake upstream."""
    owner = await register(http)
    response = await http.post(
        "/v1/mcp-servers",
        json={"name": "srv", "url": url, "approval": "always"},
        headers=owner.headers,
    )
    assert response.status_code == 201, response.text
    model = f"node-approval-{uuid.uuid4().hex[:8]}"
    upstream.reply(model, Reply(tokens=["Done."], tool_call=ToolCall("srv__echo", {"text": "hi"})))
    slug = f"guarded-{uuid.uuid4().hex[:6]}"
    await create_agent(http, owner, slug, model=f"openai:{model}", skills=[], mcp_servers=["srv"])
    return owner, slug


def _tool_part(parts: list[dict[str, Any]]) -> dict[str, Any]:
    [part] = [p for p in parts if p["type"] == "tool-srv__echo"]
    return part


@pytest.mark.parametrize("approved", [True, False])
async def test_ai_sdk_approves_or_denies_a_tool_call_and_the_turn_continues(
    approved: bool,
    server: ServerProcess,
    http: httpx.AsyncClient,
    upstream: FakeOpenAI,
    node_clients: Path,  # noqa: F811
    mcp_url: tuple[str, ToolServer],
) -> None:
    url, tools = mcp_url
    owner, slug = await _guarded_agent(http, upstream, url)
    result = await run_node(
        node_clients,
        "ui-approval",
        url=server.url,
        token=owner.access_token,
        slug=slug,
        chatId=f"sdk-approval-{uuid.uuid4().hex[:6]}",
        text="say hi",
        approved=approved,
        reason=None if approved else "not now",
    )
    asked = _tool_part(result["paused"]["parts"])
    assert asked["state"] == "approval-requested", result
    assert asked["input"] == {"text": "hi"}
    assert result["error"] is None, result
    assert result["status"] == "ready", result
    done = _tool_part(result["parts"])
    assert done["state"] == "output-available", result
    if approved:
        assert done["output"] == "echo: hi"
        assert len(tools.headers) == 1
    else:
        assert done["output"] == "The user denied this call: not now"
        assert tools.headers == []
    text = "".join(p["text"] for p in result["parts"] if p["type"] == "text")
    assert text.endswith("Done.")
    conversation_id = result["paused"]["metadata"]["conversation_id"]
    shown = (await http.get(f"/v1/conversations/{conversation_id}", headers=owner.headers)).json()
    assert shown["pending_approvals"] == []
    assert shown["approvals"][0]["approved"] is approved


@pytest.mark.parametrize("approved", [True, False])
async def test_ag_ui_http_agent_answers_an_interrupt_with_resume(
    approved: bool,
    server: ServerProcess,
    http: httpx.AsyncClient,
    upstream: FakeOpenAI,
    node_clients: Path,  # noqa: F811
    mcp_url: tuple[str, ToolServer],
) -> None:
    url, tools = mcp_url
    owner, slug = await _guarded_agent(http, upstream, url)
    thread = f"agui-approval-{uuid.uuid4().hex[:6]}"
    result = await run_node(
        node_clients,
        "agui-approval",
        url=server.url,
        token=owner.access_token,
        slug=slug,
        threadId=thread,
        text="say hi",
        approved=approved,
        reason=None if approved else "not now",
    )
    assert result["failure"] is None, result
    [interrupt] = result["interrupts"]
    assert interrupt["reason"] == "tool_call"
    assert result["first"][-1]["type"] == "RUN_FINISHED"
    [output] = [e for e in result["second"] if e["type"] == "TOOL_CALL_RESULT"]
    expected = "echo: hi" if approved else "The user denied this call: not now"
    assert output["content"] == expected
    assert result["second"][-1]["type"] == "RUN_FINISHED"
    assert result["pending"] == []
    assert len(tools.headers) == (1 if approved else 0)
    text = "".join(e["delta"] for e in result["second"] if e["type"] == "TEXT_MESSAGE_CONTENT")
    assert text == "Done."
