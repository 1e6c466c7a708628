"""End to end against a real uvicorn on 127.0.0.1 with real SSE and WebSocket clients."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
import uuid
from typing import Any

import httpx
import pytest
import websockets
from httpx_sse import aconnect_sse
from websockets.exceptions import ConnectionClosed

from tests.e2e.server import ServerProcess
from tests.factories import Account, create_agent, register
from tests.fakes.openai_server import FakeOpenAI, Reply

pytestmark = pytest.mark.e2e


async def wait_for_message(
    http: httpx.AsyncClient, account: Account, conversation_id: str, status: str
) -> dict[str, Any]:
    """Poll the API (bounded) until the assistant message reaches ``status``."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        response = await http.get(
            f"/v1/conversations/{conversation_id}/messages", headers=account.headers
        )
        items = response.json()["items"]
        if items and items[-1]["role"] == "assistant" and items[-1]["status"] == status:
            return items[-1]  # type: ignore[no-any-return]
        await asyncio.sleep(0.05)
    raise AssertionError(f"message never reached {status}: {items}")


async def test_bad_token_is_seen_as_close_code_4001_and_never_logged(
    server: ServerProcess,
) -> None:
    canary = f"leak-canary-{uuid.uuid4().hex}"
    async with websockets.connect(f"{server.ws_url}/v1/agents/demo/ws?token={canary}") as ws:
        with pytest.raises(ConnectionClosed) as info:
            await ws.recv()
    assert info.value.rcvd is not None
    assert info.value.rcvd.code == 4001
    assert "/ws?token=[redacted]" in server.log()
    assert canary not in server.log()


async def test_auth_message_then_stream_over_real_websocket(
    server: ServerProcess, http: httpx.AsyncClient
) -> None:
    owner = await register(http)
    await create_agent(http, owner, "live")
    async with websockets.connect(f"{server.ws_url}/v1/agents/live/ws") as ws:
        await ws.send(json.dumps({"type": "auth", "token": owner.access_token}))
        assert json.loads(await ws.recv())["type"] == "auth_ok"
        await ws.send(json.dumps({"type": "message", "content": "hello over the wire"}))
        events = []
        while not events or events[-1]["type"] not in ("done", "error"):
            events.append(json.loads(await ws.recv()))
    assert events[-1]["status"] == "complete"
    text = "".join(e["content"] for e in events if e["type"] == "text_delta")
    assert "hello over the wire" in text


async def test_sse_client_disconnect_mid_run_finds_complete_answer(
    server: ServerProcess, http: httpx.AsyncClient
) -> None:
    owner = await register(http)
    await create_agent(http, owner, "storyteller")
    conversation_id = None
    async with aconnect_sse(
        http,
        "POST",
        "/v1/agents/storyteller/chat/stream",
        json={"message": "tell me a long story"},
        headers=owner.headers,
    ) as source:
        async for sse in source.aiter_sse():
            event = json.loads(sse.data)
            if event["type"] == "text_delta" and "conversation_id" in event:
                conversation_id = event["conversation_id"]
                break  # hang up mid-run
    assert conversation_id is not None
    message = await wait_for_message(http, owner, conversation_id, "complete")
    assert len(message["content"].split()) >= 300


async def test_fifty_concurrent_streams_across_teams_get_their_own_text(
    server: ServerProcess, http: httpx.AsyncClient
) -> None:
    teams = [await register(http, f"team{i}") for i in range(5)]
    for account in teams:
        await create_agent(http, account, "echo")

    async def one(index: int) -> tuple[str, str]:
        account = teams[index % len(teams)]
        marker = f"marker-{index}-{uuid.uuid4().hex[:6]}"
        text = ""
        async with aconnect_sse(
            http,
            "POST",
            "/v1/agents/echo/chat/stream",
            json={"message": f"please echo {marker}"},
            headers=account.headers,
        ) as source:
            async for sse in source.aiter_sse():
                event = json.loads(sse.data)
                if event["type"] == "text_delta":
                    text += event["content"]
                if event["type"] in ("done", "error"):
                    assert event["type"] == "done", event
        return marker, text

    results = await asyncio.gather(*(one(i) for i in range(50)))
    for marker, text in results:
        assert marker in text
        others = [m for m, _ in results if m != marker and m in text]
        assert others == []


async def test_websocket_connection_rate_limit_is_4029_for_real_clients(
    upstream: object, database_url: str
) -> None:
    process = ServerProcess(
        {"AGENTSTREAM_DATABASE_URL": database_url, "AGENTSTREAM_RATE_LIMIT_WS_CONNECT": "1"}
    )
    process.start()
    try:
        async with websockets.connect(f"{process.ws_url}/v1/agents/demo/ws?token=x") as ws:
            with pytest.raises(ConnectionClosed) as first:
                await ws.recv()
        assert first.value.rcvd is not None
        assert first.value.rcvd.code == 4001
        async with websockets.connect(f"{process.ws_url}/v1/agents/demo/ws?token=x") as ws:
            with pytest.raises(ConnectionClosed) as second:
                await ws.recv()
        assert second.value.rcvd is not None
        assert second.value.rcvd.code == 4029
    finally:
        process.stop()


async def test_cancel_closes_the_upstream_request_and_stores_partial_text(
    server: ServerProcess, http: httpx.AsyncClient, upstream: FakeOpenAI
) -> None:
    owner = await register(http)
    model = f"slow-{uuid.uuid4().hex[:8]}"
    upstream.reply(model, Reply(tokens=[f"t{i} " for i in range(200)], delay_s=0.02))
    await create_agent(http, owner, "remote", model=f"openai:{model}")
    async with websockets.connect(
        f"{server.ws_url}/v1/agents/remote/ws?token={owner.access_token}"
    ) as ws:
        await ws.recv()
        await ws.send(json.dumps({"type": "message", "content": "stream a lot"}))
        deltas = 0
        while deltas < 5:
            event = json.loads(await ws.recv())
            deltas += event["type"] == "text_delta"
        await ws.send(json.dumps({"type": "cancel"}))
        while (event := json.loads(await ws.recv()))["type"] != "done":
            assert event["type"] == "text_delta"
    assert event["status"] == "cancelled"
    assert event["content"] == "Cancelled by client"
    record = upstream.streams_for(model)[-1]
    assert await asyncio.to_thread(record.closed_early.wait, 5)
    assert record.sent < 200
    message = await wait_for_message(http, owner, event["conversation_id"], "cancelled")
    assert message["content"].startswith("t0 t1 t2 t3 t4 ")
    assert len(message["content"].split()) < 200


async def test_upstream_failure_mid_stream_then_server_keeps_serving(
    server: ServerProcess, http: httpx.AsyncClient, upstream: FakeOpenAI
) -> None:
    owner = await register(http)
    model = f"flaky-{uuid.uuid4().hex[:8]}"
    upstream.reply(model, Reply(tokens=["good ", "bad"], fail_after=1))
    await create_agent(http, owner, "flaky", model=f"openai:{model}")
    events = []
    async with aconnect_sse(
        http, "POST", "/v1/agents/flaky/chat/stream", json={"message": "x"}, headers=owner.headers
    ) as source:
        events = [json.loads(sse.data) async for sse in source.aiter_sse()]
    assert events[-1]["type"] == "error"
    assert events[-1]["error_code"] == "model_error"
    message = await wait_for_message(http, owner, events[-1]["conversation_id"], "failed")
    assert message["content"] == "good "
    upstream.reply(model, Reply(tokens=["recovered"]))
    again = await http.post("/v1/agents/flaky/chat", json={"message": "y"}, headers=owner.headers)
    assert again.status_code == 200
    assert again.json()["response"] == "recovered"
    assert (await http.get("/health")).status_code == 200


async def test_cli_chat_streams_a_reply_and_shows_tool_calls(
    server: ServerProcess, http: httpx.AsyncClient
) -> None:
    owner = await register(http)
    await create_agent(http, owner, "cli")
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "agentstream",
        "chat",
        "cli",
        "--url",
        server.url,
        "--email",
        owner.email,
        "--password",
        owner.password,
        "-m",
        "What does the code-review skill do?",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "COLUMNS": "200"},
    )
    output, _ = await asyncio.wait_for(process.communicate(), 60)
    text = output.decode()
    assert process.returncode == 0, text
    assert "→ load_skill" in text
    assert "code-review" in text
    assert "Here is how the code-review skill works" in text
