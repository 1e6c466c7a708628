"""WebSocket transport in-process: auth, protocol, cancel, rate limits, tools and memory."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from httpx_ws import WebSocketDisconnect

from agentstream.auth.tokens import create_access_token
from agentstream.models import Message
from agentstream.settings import Settings
from agentstream.state import AppState
from tests.factories import Account
from tests.streaming.scripted import Script
from tests.streaming.wsclient import receive_until_terminal, ws_connect

MakeAgent = Callable[..., Any]


async def expect_close(ws: Any, code: int) -> None:
    """Read until the server closes; the close code must be ``code``."""
    with pytest.raises(WebSocketDisconnect) as info:  # noqa: PT012 - reads until the close
        while True:
            await ws.receive_json()
    assert info.value.code == code


class TestWSAuth:
    async def test_ws_connect_query_token(self, app: FastAPI, owner: Account) -> None:
        async with ws_connect(app, f"/v1/agents/bot/ws?token={owner.access_token}") as ws:
            assert await ws.receive_json() == {
                "type": "auth_ok",
                "user_id": str(owner.user_id),
                "team_id": str(owner.team_id),
            }

    async def test_ws_connect_auth_message(self, app: FastAPI, owner: Account) -> None:
        async with ws_connect(app, "/v1/agents/bot/ws") as ws:
            await ws.send_json({"type": "auth", "token": owner.access_token})
            assert (await ws.receive_json())["type"] == "auth_ok"
            await ws.send_json({"type": "ping"})
            assert await ws.receive_json() == {"type": "pong"}

    async def test_ws_reject_invalid_token(self, app: FastAPI) -> None:
        async with ws_connect(app, "/v1/agents/bot/ws?token=garbage") as ws:
            await expect_close(ws, 4001)

    async def test_ws_reject_expired_token(
        self, app: FastAPI, owner: Account, settings: Settings
    ) -> None:
        token = create_access_token(settings.resolved_jwt_secret, owner.user_id, owner.team_id, -10)
        async with ws_connect(app, f"/v1/agents/bot/ws?token={token}") as ws:
            await expect_close(ws, 4001)

    @pytest.mark.parametrize("settings_overrides", [{"ws_auth_timeout_s": 0.2}])
    async def test_ws_reject_no_auth_timeout(self, app: FastAPI) -> None:
        async with ws_connect(app, "/v1/agents/bot/ws") as ws:
            await expect_close(ws, 4001)

    async def test_ws_first_message_not_auth_closes(self, app: FastAPI) -> None:
        async with ws_connect(app, "/v1/agents/bot/ws") as ws:
            await ws.send_json({"type": "ping"})
            await expect_close(ws, 4001)

    async def test_ws_api_key_and_foreign_team_id(
        self, app: FastAPI, client: httpx.AsyncClient, owner: Account
    ) -> None:
        key = (await client.post("/v1/api-keys", json={"name": "ws"}, headers=owner.headers)).json()
        async with ws_connect(app, f"/v1/agents/bot/ws?token={key['key']}") as ws:
            assert (await ws.receive_json())["type"] == "auth_ok"
        path = f"/v1/agents/bot/ws?token={owner.access_token}&team_id={uuid.uuid4()}"
        async with ws_connect(app, path) as ws:
            await expect_close(ws, 4001)

    async def test_ws_membership_rechecked_per_frame(
        self, app: FastAPI, client: httpx.AsyncClient, owner: Account
    ) -> None:
        from tests.factories import add_member, register

        member = await register(client, "member")
        await add_member(client, owner, member, "member")
        path = f"/v1/agents/bot/ws?token={member.access_token}&team_id={owner.team_id}"
        async with ws_connect(app, path) as ws:
            assert (await ws.receive_json())["type"] == "auth_ok"
            await client.delete(
                f"/v1/teams/{owner.team_id}/members/{member.user_id}", headers=owner.headers
            )
            await ws.send_json({"type": "cancel"})  # any frame but a ping (no database work)
            error = await ws.receive_json()
            assert (error["type"], error["error_code"]) == ("error", "unauthorized")
            await expect_close(ws, 4001)


class TestWSProtocol:
    async def test_ws_ping_pong(self, app: FastAPI, owner: Account) -> None:
        async with ws_connect(app, f"/v1/agents/bot/ws?token={owner.access_token}") as ws:
            await ws.receive_json()
            for _ in range(3):
                await ws.send_json({"type": "ping"})
                assert await ws.receive_json() == {"type": "pong"}

    async def test_ws_message_triggers_streaming(
        self, app: FastAPI, owner: Account, scripted_agent: MakeAgent, script: Script
    ) -> None:
        slug = await scripted_agent(script)
        async with ws_connect(app, f"/v1/agents/{slug}/ws?token={owner.access_token}") as ws:
            await ws.receive_json()
            await ws.send_json({"type": "message", "content": "hi"})
            events = await receive_until_terminal(ws)
        types = [e["type"] for e in events]
        assert types == [
            "memory_context",
            "typing",
            "text_delta",
            "text_delta",
            "text_delta",
            "usage",
            "done",
        ]
        assert "".join(e["content"] for e in events if e["type"] == "text_delta") == "Hello there!"

    async def test_ws_done_has_conversation_id(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        owner: Account,
        scripted_agent: MakeAgent,
        script: Script,
    ) -> None:
        slug = await scripted_agent(script)
        async with ws_connect(app, f"/v1/agents/{slug}/ws?token={owner.access_token}") as ws:
            await ws.receive_json()
            await ws.send_json({"type": "message", "content": "hi"})
            done = (await receive_until_terminal(ws))[-1]
            conversation_id = done["conversation_id"]
            await ws.send_json(
                {"type": "message", "content": "again", "conversation_id": conversation_id}
            )
            assert (await receive_until_terminal(ws))[-1]["conversation_id"] == conversation_id
        messages = await client.get(
            f"/v1/conversations/{conversation_id}/messages", headers=owner.headers
        )
        assert len(messages.json()["items"]) == 4

    async def test_ws_done_has_usage(
        self, app: FastAPI, owner: Account, scripted_agent: MakeAgent, script: Script
    ) -> None:
        slug = await scripted_agent(script)
        async with ws_connect(app, f"/v1/agents/{slug}/ws?token={owner.access_token}") as ws:
            await ws.receive_json()
            await ws.send_json({"type": "message", "content": "hi"})
            done = (await receive_until_terminal(ws))[-1]
        assert done["status"] == "complete"
        assert done["usage"]["output_tokens"] > 0
        assert done["usage"]["input_tokens"] > 0

    async def test_ws_error_on_agent_not_found(self, app: FastAPI, owner: Account) -> None:
        async with ws_connect(app, f"/v1/agents/ghost/ws?token={owner.access_token}") as ws:
            await ws.receive_json()
            await ws.send_json({"type": "message", "content": "hi"})
            error = await ws.receive_json()
            assert (error["type"], error["error_code"]) == ("error", "agent_not_found")
            await ws.send_json({"type": "ping"})
            assert await ws.receive_json() == {"type": "pong"}

    @pytest.mark.parametrize(
        "frame",
        [
            "not json",
            "[1, 2]",
            '{"type": "dance"}',
            '{"type": "message"}',
            '{"type": "message", "content": ""}',
            '{"type": "message", "content": 42}',
            '{"type": "message", "content": "hi", "conversation_id": "nope"}',
        ],
    )
    async def test_ws_invalid_message_keeps_socket_usable(
        self, app: FastAPI, owner: Account, frame: str
    ) -> None:
        async with ws_connect(app, f"/v1/agents/bot/ws?token={owner.access_token}") as ws:
            await ws.receive_json()
            await ws.send_text(frame)
            error = await ws.receive_json()
            assert (error["type"], error["error_code"]) == ("error", "invalid_message")
            await ws.send_json({"type": "ping"})
            assert await ws.receive_json() == {"type": "pong"}

    async def test_ws_binary_and_oversized_content(self, app: FastAPI, owner: Account) -> None:
        async with ws_connect(app, f"/v1/agents/bot/ws?token={owner.access_token}") as ws:
            await ws.receive_json()
            await ws.send_bytes(b"\x00\x01")
            assert (await ws.receive_json())["error_code"] == "invalid_message"
            await ws.send_json({"type": "message", "content": "x" * 10_001})
            assert (await ws.receive_json())["error_code"] == "invalid_message"
            await ws.send_json({"type": "ping"})
            assert await ws.receive_json() == {"type": "pong"}

    async def test_ws_frame_over_64k_closes_1009(self, app: FastAPI, owner: Account) -> None:
        async with ws_connect(app, f"/v1/agents/bot/ws?token={owner.access_token}") as ws:
            await ws.receive_json()
            await ws.send_text('{"type":"message","content":"' + "x" * 70_000 + '"}')
            await expect_close(ws, 1009)

    @pytest.mark.parametrize("settings_overrides", [{"ws_idle_timeout_s": 0.3}])
    async def test_ws_idle_timeout_closes_1000(self, app: FastAPI, owner: Account) -> None:
        async with ws_connect(app, f"/v1/agents/bot/ws?token={owner.access_token}") as ws:
            await ws.receive_json()
            await expect_close(ws, 1000)


class TestWSCancelDisconnect:
    async def test_cancel_stops_generation(
        self, app: FastAPI, owner: Account, scripted_agent: MakeAgent, state: AppState
    ) -> None:
        script = Script(tokens=["one ", "two ", "three"], hold_after=2)
        slug = await scripted_agent(script)
        async with ws_connect(app, f"/v1/agents/{slug}/ws?token={owner.access_token}") as ws:
            await ws.receive_json()
            await ws.send_json({"type": "message", "content": "go"})
            received = [await ws.receive_json() for _ in range(4)]  # ctx, typing, 2 deltas
            assert [e["type"] for e in received][-2:] == ["text_delta", "text_delta"]
            await script.started.wait()
            [run] = state.runs.active()
            await ws.send_json({"type": "cancel"})
            done = await ws.receive_json()
            assert done["type"] == "done"
            assert done["status"] == "cancelled"
            assert done["content"] == "Cancelled by client"
            # The model stream itself was closed, not merely left waiting ...
            await asyncio.wait_for(script.closed_early.wait(), 5)
            assert script.cancelled.is_set()
            # ... so releasing the hold now cannot produce the third token.
            script.release.set()
            await asyncio.wait_for(run.task, 5)
            await ws.send_json({"type": "ping"})
            assert await ws.receive_json() == {"type": "pong"}
        assert script.sent == 2
        async with state.sessions() as session:
            stored = await session.get(Message, uuid.UUID(done["message_id"]))
        assert stored is not None
        assert (stored.status.value, stored.content) == ("cancelled", "one two ")

    async def test_cancel_when_idle_is_noop(self, app: FastAPI, owner: Account) -> None:
        async with ws_connect(app, f"/v1/agents/bot/ws?token={owner.access_token}") as ws:
            await ws.receive_json()
            await ws.send_json({"type": "cancel"})
            await ws.send_json({"type": "ping"})
            assert await ws.receive_json() == {"type": "pong"}

    async def test_client_disconnect_no_crash(
        self, app: FastAPI, owner: Account, scripted_agent: MakeAgent, state: AppState
    ) -> None:
        script = Script(tokens=["a", "b", "c"], hold_after=1)
        slug = await scripted_agent(script)
        async with ws_connect(app, f"/v1/agents/{slug}/ws?token={owner.access_token}") as ws:
            await ws.receive_json()
            await ws.send_json({"type": "message", "content": "go"})
            await script.started.wait()
        # The client is gone; once the server has noticed (its subscription closed), the run
        # is not cancelled (default on_disconnect) and completes.
        await asyncio.wait_for(state.runs.streams_closed(), 5)
        runs = state.runs.active()
        assert len(runs) == 1
        script.release.set()
        await asyncio.wait_for(runs[0].task, 5)
        async with state.sessions() as session:
            stored = await session.get(Message, runs[0].id)
        assert stored is not None
        assert (stored.status.value, stored.content) == ("complete", "abc")
        assert not script.cancelled.is_set()

    async def test_disconnect_with_on_disconnect_cancel(
        self, app: FastAPI, owner: Account, scripted_agent: MakeAgent, state: AppState
    ) -> None:
        script = Script(tokens=["a", "b", "c"], hold_after=1)
        slug = await scripted_agent(script)
        async with ws_connect(app, f"/v1/agents/{slug}/ws?token={owner.access_token}") as ws:
            await ws.receive_json()
            await ws.send_json({"type": "message", "content": "go", "on_disconnect": "cancel"})
            await script.started.wait()
            runs = state.runs.active()
        await asyncio.wait_for(runs[0].task, 5)
        assert script.cancelled.is_set()
        async with state.sessions() as session:
            stored = await session.get(Message, runs[0].id)
        assert stored is not None
        assert (stored.status.value, stored.content) == ("cancelled", "a")

    async def test_multiple_messages_sequential(
        self, app: FastAPI, owner: Account, scripted_agent: MakeAgent, script: Script
    ) -> None:
        slug = await scripted_agent(script)
        async with ws_connect(app, f"/v1/agents/{slug}/ws?token={owner.access_token}") as ws:
            await ws.receive_json()
            for text in ("first", "second", "third"):
                await ws.send_json({"type": "message", "content": text})
                assert (await receive_until_terminal(ws))[-1]["status"] == "complete"
        assert len(script.calls) == 3

    async def test_message_during_run_is_busy(
        self, app: FastAPI, owner: Account, scripted_agent: MakeAgent
    ) -> None:
        script = Script(tokens=["a", "b"], hold_after=1)
        slug = await scripted_agent(script)
        async with ws_connect(app, f"/v1/agents/{slug}/ws?token={owner.access_token}") as ws:
            await ws.receive_json()
            await ws.send_json({"type": "message", "content": "go"})
            await script.started.wait()
            await ws.send_json({"type": "message", "content": "again"})
            events: list[dict[str, Any]] = []
            while not any(e.get("error_code") == "busy" for e in events):
                events.append(await ws.receive_json())
            script.release.set()
            rest = await receive_until_terminal(ws)
        assert rest[-1]["status"] == "complete"
        text = "".join(e["content"] for e in events + rest if e["type"] == "text_delta")
        assert text == "ab"
        assert len(script.calls) == 1


class TestWSRateLimitAndEvents:
    @pytest.mark.parametrize("settings_overrides", [{"rate_limit_ws_connect": 2}])
    async def test_rate_limit_reject_connection(self, app: FastAPI) -> None:
        for _ in range(2):
            async with ws_connect(app, "/v1/agents/bot/ws?token=x") as ws:
                await expect_close(ws, 4001)
        async with ws_connect(app, "/v1/agents/bot/ws?token=x") as ws:
            await expect_close(ws, 4029)

    @pytest.mark.parametrize("settings_overrides", [{"rate_limit_chat": 1}])
    async def test_rate_limit_reject_message(
        self, app: FastAPI, owner: Account, scripted_agent: MakeAgent, script: Script
    ) -> None:
        slug = await scripted_agent(script)
        async with ws_connect(app, f"/v1/agents/{slug}/ws?token={owner.access_token}") as ws:
            await ws.receive_json()
            await ws.send_json({"type": "message", "content": "one"})
            assert (await receive_until_terminal(ws))[-1]["type"] == "done"
            await ws.send_json({"type": "message", "content": "two"})
            error = await ws.receive_json()
            assert (error["type"], error["error_code"]) == ("error", "rate_limited")
            await ws.send_json({"type": "ping"})
            assert await ws.receive_json() == {"type": "pong"}
            # cancel is never rate limited and never answered: the next reply is the pong.
            await ws.send_json({"type": "cancel"})
            await ws.send_json({"type": "ping"})
            assert await ws.receive_json() == {"type": "pong"}
        assert len(script.calls) == 1

    async def test_tool_call_events_in_ws(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        owner: Account,
        scripted_agent: MakeAgent,
    ) -> None:
        skills = (await client.get("/v1/skills", headers=owner.headers)).json()["items"]
        name = skills[0]["name"]
        slug = await scripted_agent(Script(tool_call=("load_skill", {"skill_name": name})))
        async with ws_connect(app, f"/v1/agents/{slug}/ws?token={owner.access_token}") as ws:
            await ws.receive_json()
            await ws.send_json({"type": "message", "content": "hi"})
            events = await receive_until_terminal(ws)
        call = next(e for e in events if e["type"] == "tool_call")
        assert call["tool_args"] == {"skill_name": name}
        result = next(e for e in events if e["type"] == "tool_result")
        assert result["tool_call_id"] == call["tool_call_id"]

    async def test_memory_context_event_in_ws(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        owner: Account,
        scripted_agent: MakeAgent,
        script: Script,
    ) -> None:
        slug = await scripted_agent(script)
        await client.post(
            "/v1/memories", json={"content": "The owner's dog is named Rex"}, headers=owner.headers
        )
        async with ws_connect(app, f"/v1/agents/{slug}/ws?token={owner.access_token}") as ws:
            await ws.receive_json()
            await ws.send_json({"type": "message", "content": "what is my dog named?"})
            events = await receive_until_terminal(ws)
        assert events[0] == {
            "type": "memory_context",
            "memory_count": 1,
            "seq": 1,
            "run_id": events[-1]["message_id"],  # the run is its assistant message
            "conversation_id": events[-1]["conversation_id"],
        }
