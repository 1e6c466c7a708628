"""Approval across a restart and two workers (PostgreSQL + Redis): a turn paused on one
worker is decided after the server restarts, on one worker, and its continuation is followed
on the other; the stored conversation reads as one turn."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from tests.e2e.server import ServerProcess
from tests.e2e.test_workers import pinned_clients
from tests.factories import create_agent, register
from tests.fakes.mcp_server import ToolServer, serve_mcp
from tests.fakes.openai_server import FakeOpenAI, Reply, ToolCall
from tests.streaming.scripted import parse_sse

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.timeout(240),
    pytest.mark.parametrize("database_url", ["postgres"], indirect=True),  # workers need it
]


@pytest.fixture(scope="module")
def workers(database_url: str, redis_url: str, upstream: FakeOpenAI) -> Iterator[ServerProcess]:
    process = ServerProcess(
        {
            "AGENTSTREAM_DATABASE_URL": database_url,
            "AGENTSTREAM_REDIS_URL": redis_url,
            "AGENTSTREAM_REDIS_TIMEOUT_S": "2",
            "AGENTSTREAM_WORKERS": "2",
            "OPENAI_BASE_URL": upstream.base_url,
            "OPENAI_API_KEY": "test-key",
            "AGENTSTREAM_MCP_ALLOWED_HOSTS": "127.0.0.1",
        }
    )
    process.start()
    yield process
    process.stop()


@pytest.fixture
async def mcp() -> AsyncIterator[tuple[str, ToolServer]]:
    tools = ToolServer()
    async with serve_mcp(tools) as url:
        yield url, tools


async def test_paused_on_one_worker_decided_after_a_restart_followed_on_the_other(
    workers: ServerProcess, upstream: FakeOpenAI, mcp: tuple[str, ToolServer]
) -> None:
    url, tools = mcp
    model = f"workers-approval-{uuid.uuid4().hex[:8]}"
    upstream.reply(model, Reply(tokens=["Done."], tool_call=ToolCall("srv__echo", {"text": "hi"})))
    async with pinned_clients(workers.url) as (one, _):
        owner = await register(one)
        registered = await one.post(
            "/v1/mcp-servers",
            json={"name": "srv", "url": url, "approval": "always"},
            headers=owner.headers,
        )
        assert registered.status_code == 201, registered.text
        await create_agent(
            one, owner, "guarded", model=f"openai:{model}", skills=[], mcp_servers=["srv"]
        )
        paused = await one.post(
            "/v1/agents/guarded/chat/stream/advanced",
            json={"message": "say hi"},
            headers=owner.headers,
        )
        events, _ = parse_sse(paused.text)
    assert events[-1]["status"] == "awaiting_approval"
    approval = next(e for e in events if e["type"] == "approval_required")
    run_id, conversation_id = events[-1]["message_id"], events[-1]["conversation_id"]

    await asyncio.to_thread(workers.stop)
    await asyncio.to_thread(workers.start)

    async with pinned_clients(workers.url) as (one, other):
        shown = (
            await other.get(f"/v1/conversations/{conversation_id}", headers=owner.headers)
        ).json()
        assert [p["approval_id"] for p in shown["pending_approvals"]] == [approval["approval_id"]]
        decided = await one.post(
            f"/v1/runs/{run_id}/approvals",
            json={"decisions": [{"approval_id": approval["approval_id"], "approved": True}]},
            headers=owner.headers,
        )
        assert decided.status_code == 202, decided.text
        continuation = decided.json()["run_id"]
        followed = await other.get(f"/v1/runs/{continuation}/events", headers=owner.headers)
        continued, _ = parse_sse(followed.text)
        messages: list[dict[str, Any]] = (
            await other.get(f"/v1/conversations/{conversation_id}/messages", headers=owner.headers)
        ).json()["items"]
    [result] = [e for e in continued if e["type"] == "tool_result"]
    assert result["tool_result_content"] == "echo: hi"
    assert continued[-1]["status"] == "complete"
    assert len(tools.headers) == 1
    assert [(m["role"], m["status"]) for m in messages] == [
        ("user", "complete"),
        ("assistant", "awaiting_approval"),
        ("assistant", "complete"),
    ]
    assert messages[2]["id"] == continuation
    assert messages[2]["content"] == "Done."
