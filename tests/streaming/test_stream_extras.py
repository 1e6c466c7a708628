"""Keep-alives, persisted tool calls, model settings, and token expiry on a live socket."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import jwt
import pytest
from fastapi import FastAPI

from agentstream.auth import tokens
from agentstream.auth.tokens import create_access_token
from agentstream.settings import Settings
from tests.factories import Account
from tests.streaming.live import live_sse
from tests.streaming.scripted import Script, parse_sse
from tests.streaming.test_websocket import expect_close
from tests.streaming.wsclient import ws_connect

MakeAgent = Callable[..., Any]


@pytest.mark.parametrize("settings_overrides", [{"sse_keepalive_s": 0.3}])
async def test_silent_stream_gets_keepalive_comments(
    app: FastAPI, owner: Account, scripted_agent: MakeAgent
) -> None:
    """``: ping`` comments flow while the model is silent (held), and only then."""
    script = Script(tokens=["thinking", " done"], hold_after=1)
    slug = await scripted_agent(script)
    path = f"/v1/agents/{slug}/chat/stream"
    async with live_sse(app, path, {"message": "hi"}, owner.headers) as sse:
        assert (await sse.next_event())["content"] == "thinking"
        await script.started.wait()
        # Held: the connection stays alive with comments, one keep-alive period apart.
        assert await sse.next_frame() == ": ping"
        assert await sse.next_frame() == ": ping"
        script.release.set()
        # Released: the rest comes back to back, data only (the keep-alive is a generous
        # 0.3 s, far above the time to produce queued events).
        rest: list[str] = []
        while (frame := await sse.next_frame()) is not None:
            rest.append(frame)
    events, comments = parse_sse("".join(f + "\n\n" for f in rest))
    assert comments == []
    assert [e["type"] for e in events] == ["text_delta", "usage", "done"]
    assert events[0]["content"] == " done"


async def test_tool_calls_and_results_are_persisted_on_the_assistant_message(
    client: httpx.AsyncClient, owner: Account, scripted_agent: MakeAgent
) -> None:
    skills = (await client.get("/v1/skills", headers=owner.headers)).json()["items"]
    name = skills[0]["name"]
    slug = await scripted_agent(Script(tool_call=("load_skill", {"skill_name": name})))
    chat = await client.post(
        f"/v1/agents/{slug}/chat", json={"message": "x"}, headers=owner.headers
    )
    messages = await client.get(
        f"/v1/conversations/{chat.json()['conversation_id']}/messages", headers=owner.headers
    )
    assistant = messages.json()["items"][-1]
    assert len(assistant["tool_calls"]) == 1
    call = assistant["tool_calls"][0]
    assert call["tool_name"] == "load_skill"
    assert call["tool_args"] == {"skill_name": name}
    assert call["tool_call_id"] == "call-1"
    assert call["tool_result_content"].startswith(f"# Skill: {name}")


async def test_temperature_and_max_tokens_reach_the_model(
    client: httpx.AsyncClient, owner: Account, scripted_agent: MakeAgent, script: Script
) -> None:
    slug = await scripted_agent(script, settings={"temperature": 0.7, "max_tokens": 42})
    await client.post(f"/v1/agents/{slug}/chat", json={"message": "x"}, headers=owner.headers)
    _, info = script.calls[-1]
    assert info.model_settings is not None
    assert info.model_settings.get("temperature") == 0.7
    assert info.model_settings.get("max_tokens") == 42


async def test_instructions_reach_the_model(
    client: httpx.AsyncClient, owner: Account, scripted_agent: MakeAgent, script: Script
) -> None:
    slug = await scripted_agent(script, instructions="Always answer in French.")
    await client.post(f"/v1/agents/{slug}/chat", json={"message": "x"}, headers=owner.headers)
    _, info = script.calls[-1]
    assert "Always answer in French." in (info.instructions or "")


async def test_expired_token_on_a_live_socket_closes_4001(
    app: FastAPI, owner: Account, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Expiry is re-checked on every frame: moving the clock past ``exp`` ends the socket."""
    clock = [time.time()]
    real_decode = tokens.decode_access_token

    def decode_at_test_clock(secret: str, token: str) -> tokens.AccessClaims | None:
        return real_decode(secret, token, now=clock[0])

    monkeypatch.setattr(tokens, "decode_access_token", decode_at_test_clock)
    token = create_access_token(settings.resolved_jwt_secret, owner.user_id, owner.team_id, 60)
    expires = jwt.decode(token, options={"verify_signature": False})["exp"]
    async with ws_connect(app, f"/v1/agents/bot/ws?token={token}") as ws:
        assert (await ws.receive_json())["type"] == "auth_ok"
        clock[0] = expires + 0.5  # past expiry, within the 1 s leeway: still accepted
        await ws.send_json({"type": "ping"})
        assert await ws.receive_json() == {"type": "pong"}
        clock[0] = expires + 1.5  # past expiry plus leeway
        await ws.send_json({"type": "ping"})
        error = await ws.receive_json()
        assert (error["type"], error["error_code"]) == ("error", "unauthorized")
        await expect_close(ws, 4001)
