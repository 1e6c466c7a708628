"""A server that stops — gracefully or killed — ends every stream properly and loses nothing."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import websockets
from httpx_sse import aconnect_sse
from websockets.exceptions import ConnectionClosed

from tests.e2e.server import ServerProcess
from tests.factories import Account, create_agent, register

pytestmark = pytest.mark.e2e


@contextlib.asynccontextmanager
async def running(database_url: str, **env: str) -> AsyncIterator[ServerProcess]:
    process = ServerProcess({"AGENTSTREAM_DATABASE_URL": database_url, **env})
    process.start()
    try:
        yield process
    finally:
        process.stop()


async def stored_reply(process: ServerProcess, account: Account, conversation_id: str) -> Any:
    """The assistant message as a freshly started server reads it from the database."""
    async with httpx.AsyncClient(base_url=process.url, timeout=30) as http:
        login = await http.post(
            "/v1/auth/login", json={"email": account.email, "password": account.password}
        )
        headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
        messages = await http.get(f"/v1/conversations/{conversation_id}/messages", headers=headers)
    return messages.json()["items"][-1]


async def test_sigterm_ends_sse_and_websocket_streams_with_interrupted(database_url: str) -> None:
    async with (
        running(
            database_url, AGENTSTREAM_DEMO_TOKEN_DELAY_MS="20", AGENTSTREAM_SHUTDOWN_GRACE_S="5"
        ) as process,
        httpx.AsyncClient(base_url=process.url, timeout=30) as http,
    ):
        owner = await register(http)
        await create_agent(http, owner, "slow")
        ws = await websockets.connect(
            f"{process.ws_url}/v1/agents/slow/ws?token={owner.access_token}"
        )
        await ws.recv()  # auth_ok
        await ws.send(json.dumps({"type": "message", "content": "tell me a long story"}))
        ws_events = [json.loads(await ws.recv()) for _ in range(4)]  # ..., first deltas
        sse_events: list[dict[str, Any]] = []
        async with aconnect_sse(
            http,
            "POST",
            "/v1/agents/slow/chat/stream",
            json={"message": "tell me a long story"},
            headers=owner.headers,
        ) as source:
            stream = source.aiter_sse()
            sse_events.append(json.loads((await anext(stream)).data))
            # SIGTERM while both streams are mid-reply; keep reading while it shuts down.
            stopping = asyncio.create_task(asyncio.to_thread(process.stop))
            sse_events += [json.loads(sse.data) async for sse in stream]
        with contextlib.suppress(ConnectionClosed):  # 1012 once the events are sent
            async for raw in ws:
                ws_events.append(json.loads(raw))
        assert await stopping in (0, -signal.SIGTERM)
    for events in (sse_events, ws_events):
        assert events[-1]["type"] == "error", events[-3:]
        assert events[-1]["error_code"] == "interrupted"
        assert events[-1]["message_id"]
        assert events[-1]["conversation_id"]
        assert sum(e["type"] in ("done", "error") for e in events) == 1
    async with running(database_url) as restarted:
        for events in (sse_events, ws_events):
            reply = await stored_reply(restarted, owner, events[-1]["conversation_id"])
            seen = "".join(e["content"] for e in events if e["type"] == "text_delta")
            assert reply["status"] == "interrupted"
            assert reply["content"] == seen  # everything the client saw, and nothing it did not


async def test_sigkill_loses_at_most_the_last_checkpoint_interval(database_url: str) -> None:
    process = ServerProcess(
        {
            "AGENTSTREAM_DATABASE_URL": database_url,
            # Slow enough that the reply is still streaming when the server is killed.
            "AGENTSTREAM_DEMO_TOKEN_DELAY_MS": "50",
            "AGENTSTREAM_CHECKPOINT_S": "0.2",
        }
    )
    process.start()
    try:
        async with httpx.AsyncClient(base_url=process.url, timeout=30) as http:
            owner = await register(http)
            await create_agent(http, owner, "slow")
            seen: list[str] = []
            conversation_id = ""
            async with aconnect_sse(
                http,
                "POST",
                "/v1/agents/slow/chat/stream",
                json={"message": "tell me a long story"},
                headers=owner.headers,
            ) as source:
                async for sse in source.aiter_sse():
                    event = json.loads(sse.data)
                    conversation_id = conversation_id or event["conversation_id"]
                    seen.append(event.get("content", ""))
                    if len(seen) == 20:
                        break  # a disconnect: the run goes on
            # Event-driven, not a margin: wait until a checkpoint holds all the client saw.
            path = f"/v1/conversations/{conversation_id}/messages"
            checkpointed = ""
            async with asyncio.timeout(30):
                while not checkpointed.startswith("".join(seen)):
                    await asyncio.sleep(0.05)  # bounded poll of the stored reply
                    messages = await http.get(path, headers=owner.headers)
                    checkpointed = messages.json()["items"][-1]["content"]
            assert process.process is not None
            process.process.kill()
            process.process.wait()
    finally:
        process.stop()
    async with running(database_url) as restarted:
        reply = await stored_reply(restarted, owner, conversation_id)
    assert reply["status"] == "interrupted"  # killed mid-reply, and marked so at the next start
    assert reply["content"].startswith(checkpointed)  # nothing checkpointed was lost
