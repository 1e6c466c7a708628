"""The real JS clients, unmodified, against a real server: the ``ai`` package's chat (what
``useChat`` runs) with ``DefaultChatTransport``, and ``@ag-ui/client``'s ``HttpAgent``.

The Node side (tests/node/clients.mjs) prints one JSON result per scenario; this side sets up
the upstream model and asserts on the result and on what the server stored.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from httpx_sse import aconnect_sse

from tests.conftest import unavailable
from tests.e2e.server import ServerProcess
from tests.e2e.test_e2e import wait_for_message
from tests.factories import Account, create_agent, register
from tests.fakes.openai_server import FakeOpenAI, Reply, ToolCall

pytestmark = pytest.mark.e2e

NODE_DIR = Path(__file__).parents[1] / "node"
SKILL = "code-review"


@pytest.fixture(scope="session")
def node_clients() -> Path:
    """``npm ci`` the pinned clients (skipped when node_modules matches the lockfile)."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        unavailable("node and npm are needed for the JS client tests")
    lock = hashlib.sha256((NODE_DIR / "package-lock.json").read_bytes()).hexdigest()
    stamp = NODE_DIR / "node_modules" / ".agentstream-lock"
    if not stamp.exists() or stamp.read_text() != lock:
        subprocess.run(
            [str(npm), "ci", "--no-audit", "--no-fund"], cwd=NODE_DIR, check=True, timeout=300
        )
        stamp.write_text(lock)
    return Path(str(node))


async def run_node(node: Path, scenario: str, **options: Any) -> dict[str, Any]:
    process = await asyncio.create_subprocess_exec(
        str(node),
        "clients.mjs",
        scenario,
        json.dumps(options),
        cwd=NODE_DIR,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 90)
    assert process.returncode == 0, (out.decode(), err.decode())
    result: dict[str, Any] = json.loads(out)
    return result


async def remote_agent(
    http: httpx.AsyncClient, upstream: FakeOpenAI, reply: Reply
) -> tuple[Account, str, str]:
    """An account with an agent on a fake-upstream model; returns (account, slug, model)."""
    owner = await register(http)
    model = f"node-{uuid.uuid4().hex[:8]}"
    upstream.reply(model, reply)
    await create_agent(http, owner, "remote", model=f"openai:{model}")
    return owner, "remote", model


async def test_ai_sdk_chat_streams_tool_call_and_text_then_continues_the_conversation(
    server: ServerProcess, http: httpx.AsyncClient, upstream: FakeOpenAI, node_clients: Path
) -> None:
    tool = ToolCall("load_skill", {"skill_name": SKILL})
    owner, slug, model = await remote_agent(
        http, upstream, Reply(tokens=["Reviewed", " it."], tool_call=tool)
    )
    result = await run_node(
        node_clients,
        "ui-turns",
        url=server.url,
        token=owner.access_token,
        slug=slug,
        chatId="sdk-chat-1",
        texts=["review my code", "and again"],
    )
    first, second = result["turns"]
    assert first["status"] == "ready", first
    assert first["error"] is None, first
    tools = [p for p in first["parts"] if p["type"] == "tool-load_skill"]
    assert len(tools) == 1
    assert tools[0]["state"] == "output-available"
    assert tools[0]["input"] == {"skill_name": SKILL}
    assert tools[0]["output"].startswith(f"# Skill: {SKILL}")
    text = "".join(p["text"] for p in first["parts"] if p["type"] == "text")
    assert text == "Reviewed it."
    # The SDK's message is our stored message; its metadata names the conversation.
    conversation_id = first["metadata"]["conversation_id"]
    assert second["metadata"]["conversation_id"] == conversation_id
    messages = (
        await http.get(f"/v1/conversations/{conversation_id}/messages", headers=owner.headers)
    ).json()["items"]
    assert [m["role"] for m in messages] == ["user", "assistant", "user", "assistant"]
    assert messages[1]["id"] == first["id"]
    # The model saw the first turn as history on the second turn's request.
    chats = [
        [m["content"] for m in r["messages"] if m["role"] == "user"]
        for r in upstream.requests_for(model)
    ]
    second_turn = [texts for texts in chats if texts and texts[-1] == "and again"]
    assert second_turn, chats
    assert second_turn[0][0] == "review my code", chats


async def test_ai_sdk_stop_cancels_the_run_and_stores_partial_text(
    server: ServerProcess, http: httpx.AsyncClient, upstream: FakeOpenAI, node_clients: Path
) -> None:
    tokens = [f"t{i} " for i in range(300)]
    owner, slug, model = await remote_agent(http, upstream, Reply(tokens=tokens, delay_s=0.02))
    result = await run_node(
        node_clients,
        "ui-stop",
        url=server.url,
        token=owner.access_token,
        slug=slug,
        chatId="sdk-stop-1",
        minChars=15,
    )
    assert result["status"] == "ready", result
    assert result["seen"].startswith("t0 t1 ")
    record = upstream.streams_for(model)[-1]
    assert await asyncio.to_thread(record.closed_early.wait, 10)
    assert record.sent < len(tokens)
    message = await wait_for_message(
        http, owner, result["metadata"]["conversation_id"], "cancelled"
    )
    assert message["content"].startswith(result["seen"])
    assert len(message["content"].split()) < len(tokens)


async def test_ag_ui_http_agent_runs_a_turn_with_tool_call(
    server: ServerProcess, http: httpx.AsyncClient, upstream: FakeOpenAI, node_clients: Path
) -> None:
    tool = ToolCall("load_skill", {"skill_name": SKILL})
    owner, slug, _ = await remote_agent(
        http, upstream, Reply(tokens=["All", " good."], tool_call=tool)
    )
    result = await run_node(
        node_clients,
        "agui",
        url=server.url,
        token=owner.access_token,
        slug=slug,
        threadId="thread-node-1",
        text="review",
    )
    assert result["failure"] is None, result
    events = result["events"]
    types = [e["type"] for e in events]
    assert types[0] == "RUN_STARTED"
    assert types[-1] == "RUN_FINISHED"
    assert events[0]["threadId"] == "thread-node-1"
    run = await http.get(f"/v1/runs/{events[0]['runId']}", headers=owner.headers)
    assert run.status_code == 200
    assert run.json()["status"] == "complete"
    assert [e["toolCallName"] for e in events if e["type"] == "TOOL_CALL_START"] == ["load_skill"]
    assert "TOOL_CALL_RESULT" in types
    text = "".join(e["delta"] for e in events if e["type"] == "TEXT_MESSAGE_CONTENT")
    assert text == "All good."


async def test_ag_ui_http_agent_sees_run_error_when_the_model_fails(
    server: ServerProcess, http: httpx.AsyncClient, upstream: FakeOpenAI, node_clients: Path
) -> None:
    owner, slug, _ = await remote_agent(
        http, upstream, Reply(tokens=["good ", "bad"], fail_after=1)
    )
    result = await run_node(
        node_clients,
        "agui",
        url=server.url,
        token=owner.access_token,
        slug=slug,
        threadId="thread-node-err",
        text="x",
    )
    types = [e["type"] for e in result["events"]]
    assert types[0] == "RUN_STARTED"
    assert types[-1] == "RUN_ERROR", result
    assert "RUN_FINISHED" not in types
    assert result["events"][-1]["code"] == "model_error"


async def test_the_js_clients_wait_their_turn_with_multitask_enqueue(
    server: ServerProcess, http: httpx.AsyncClient, upstream: FakeOpenAI, node_clients: Path
) -> None:
    long = [f"t{i} " for i in range(1500)]
    owner, slug, model = await remote_agent(http, upstream, Reply(tokens=long, delay_s=0.02))
    common = {"url": server.url, "token": owner.access_token, "slug": slug}
    for client in ("ui", "agui"):
        async with aconnect_sse(
            http,
            "POST",
            f"/v1/agents/{slug}/chat/stream",
            json={"message": "long"},
            headers=owner.headers,
        ) as running:
            first_run = running.response.headers["X-Run-Id"]
            conversation = running.response.headers["X-Conversation-Id"]
            if client == "ui":
                node = run_node(
                    node_clients,
                    "ui-turns",
                    **common,
                    chatId=conversation,
                    texts=["next"],
                    body={"multitask": "enqueue", "on_disconnect": "continue"},
                )
            else:
                node = run_node(
                    node_clients,
                    "agui",
                    **common,
                    threadId=conversation,
                    text="next",
                    forwardedProps={"multitask": "enqueue"},
                )
            waiting = asyncio.create_task(node)
            # The client's turn is stored (queued) at once; then the long reply is stopped,
            # and the client's turn runs.
            await wait_for_messages(http, owner, conversation, 4)
            upstream.reply(model, Reply(tokens=["Your", " turn."]))
            await http.post(f"/v1/runs/{first_run}/cancel", headers=owner.headers)
            result = await asyncio.wait_for(waiting, 60)
            first = [json.loads(sse.data) async for sse in running.aiter_sse()]
        assert first[-1]["status"] == "cancelled"
        upstream.reply(model, Reply(tokens=long, delay_s=0.02))
        if client == "ui":
            turn = result["turns"][0]
            assert (turn["status"], turn["error"]) == ("ready", None), turn
            # The SDK keeps our data part on the message, before the reply's text.
            types = [p["type"] for p in turn["parts"]]
            assert types.index("data-queued") < types.index("text")
            queued = next(p for p in turn["parts"] if p["type"] == "data-queued")
            assert queued["data"] == {"run_id": first_run}
            text = "".join(p["text"] for p in turn["parts"] if p["type"] == "text")
        else:
            assert result["failure"] is None, result
            events = result["events"]
            custom = [(e["name"], e["value"]) for e in events if e["type"] == "CUSTOM"]
            assert custom == [("queued", {"run_id": first_run})]
            assert events[-1]["type"] == "RUN_FINISHED"
            text = "".join(e["delta"] for e in events if e["type"] == "TEXT_MESSAGE_CONTENT")
        assert text == "Your turn."


async def wait_for_messages(
    http: httpx.AsyncClient, owner: Account, conversation_id: str, count: int
) -> None:
    """Until the conversation has ``count`` stored messages (a polled state with a deadline)."""
    deadline = asyncio.get_running_loop().time() + 30
    path = f"/v1/conversations/{conversation_id}/messages"
    while len((await http.get(path, headers=owner.headers)).json()["items"]) < count:
        assert asyncio.get_running_loop().time() < deadline, "the turn was not stored in time"
        await asyncio.sleep(0.05)
