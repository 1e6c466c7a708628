"""An MCP server's ``approval`` setting pauses its tools' calls for the owner's decision."""

from __future__ import annotations

import httpx
import pytest

from tests.factories import Account
from tests.fakes.mcp_server import ToolServer
from tests.mcp_servers.conftest import register_server
from tests.mcp_servers.test_chat_tools import CallsTool, MakeAgent, tool_agent  # noqa: F401
from tests.streaming.scripted import parse_sse


@pytest.mark.parametrize("approval", ["always", ["echo"]])
async def test_an_mcp_tool_needing_approval_waits_then_runs_once_approved(
    approval: object,
    client: httpx.AsyncClient,
    owner: Account,
    mcp_url: str,
    tools: ToolServer,
    tool_agent: MakeAgent,  # noqa: F811
) -> None:
    await register_server(client, owner, "srv", mcp_url, approval=approval)
    slug = await tool_agent(CallsTool("srv__echo", {"text": "hi"}), ["srv"])
    path = f"/v1/agents/{slug}/chat/stream/advanced"
    paused, _ = parse_sse(
        (await client.post(path, json={"message": "go"}, headers=owner.headers)).text
    )
    assert paused[-1]["status"] == "awaiting_approval"
    [waiting] = [e for e in paused if e["type"] == "approval_required"]
    assert (waiting["tool_name"], waiting["tool_args"]) == ("srv__echo", {"text": "hi"})
    assert tools.headers == []  # the MCP tool was not called
    decisions = [{"approval_id": waiting["approval_id"], "approved": True}]
    continued, _ = parse_sse(
        (await client.post(path, json={"decisions": decisions}, headers=owner.headers)).text
    )
    [result] = [e for e in continued if e["type"] == "tool_result"]
    assert result["tool_result_content"] == "echo: hi"
    assert continued[-1]["status"] == "complete"
    assert len(tools.headers) == 1


async def test_an_mcp_tool_not_named_by_the_approval_list_runs_at_once(
    client: httpx.AsyncClient,
    owner: Account,
    mcp_url: str,
    tools: ToolServer,
    tool_agent: MakeAgent,  # noqa: F811
) -> None:
    await register_server(client, owner, "srv", mcp_url, approval=["fail"])
    slug = await tool_agent(CallsTool("srv__echo", {"text": "hi"}), ["srv"])
    response = await client.post(
        f"/v1/agents/{slug}/chat/stream/advanced", json={"message": "go"}, headers=owner.headers
    )
    events, _ = parse_sse(response.text)
    assert events[-1]["status"] == "complete"
    assert not [e for e in events if e["type"] == "approval_required"]
    assert len(tools.headers) == 1
