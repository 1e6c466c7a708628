"""Rate limits applied to HTTP: auth per IP, API per team, chat per user (SSE included)."""

from __future__ import annotations

import time

import httpx
import pytest
from fastapi import FastAPI

from tests.factories import create_agent, register
from tests.streaming.wsclient import receive_until_terminal, ws_connect


@pytest.mark.parametrize("settings_overrides", [{"rate_limit_auth": 3}])
async def test_auth_limit_per_ip_with_headers(client: httpx.AsyncClient) -> None:
    account = await register(client)  # 1 of 3
    login = {"email": account.email, "password": account.password}
    assert (await client.post("/v1/auth/login", json=login)).status_code == 200
    assert (await client.post("/v1/auth/login", json=login)).status_code == 200
    blocked = await client.post("/v1/auth/login", json=login)
    assert blocked.status_code == 429
    assert blocked.json()["error"] == "rate_limited"
    assert int(blocked.headers["Retry-After"]) >= 1
    assert blocked.headers["X-RateLimit-Limit"] == "3"
    assert blocked.headers["X-RateLimit-Remaining"] == "0"
    assert int(blocked.headers["X-RateLimit-Reset"]) > time.time()


@pytest.mark.parametrize("settings_overrides", [{"rate_limit_api": 4}])
async def test_api_limit_per_team(client: httpx.AsyncClient) -> None:
    alice = await register(client)
    bob = await register(client)
    statuses = [
        (await client.get("/v1/agents", headers=alice.headers)).status_code for _ in range(5)
    ]
    assert statuses == [200, 200, 200, 200, 429]
    # Another team has its own budget.
    assert (await client.get("/v1/agents", headers=bob.headers)).status_code == 200


@pytest.mark.parametrize("settings_overrides", [{"rate_limit_chat": 3}])
async def test_chat_limit_counts_every_transport_and_sse_is_checked_before_streaming(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    """One per-user budget across REST, SSE and WebSocket: the fourth message is refused."""
    owner = await register(client)
    await create_agent(client, owner, "bot")
    first = await client.post("/v1/agents/bot/chat", json={"message": "a"}, headers=owner.headers)
    assert first.status_code == 200
    second = await client.post(
        "/v1/agents/bot/chat/stream", json={"message": "b"}, headers=owner.headers
    )
    assert second.status_code == 200
    async with ws_connect(app, f"/v1/agents/bot/ws?token={owner.access_token}") as ws:
        assert (await ws.receive_json())["type"] == "auth_ok"
        await ws.send_json({"type": "message", "content": "c"})
        assert (await receive_until_terminal(ws))[-1]["type"] == "done"
    fourth = await client.post(
        "/v1/agents/bot/chat/stream/advanced", json={"message": "d"}, headers=owner.headers
    )
    assert fourth.status_code == 429
    assert fourth.headers["content-type"].startswith("application/json")
    assert fourth.json()["error"] == "rate_limited"
    assert "Retry-After" in fourth.headers
    # The WebSocket draws from the same, now empty, budget.
    async with ws_connect(app, f"/v1/agents/bot/ws?token={owner.access_token}") as ws:
        await ws.receive_json()
        await ws.send_json({"type": "message", "content": "e"})
        refused = await ws.receive_json()
        assert (refused["type"], refused["error_code"]) == ("error", "rate_limited")


async def test_viewer_cannot_chat_on_any_transport(client: httpx.AsyncClient) -> None:
    from tests.factories import add_member

    owner = await register(client)
    viewer = await register(client)
    await add_member(client, owner, viewer, "viewer")
    await create_agent(client, owner, "bot")
    headers = viewer.in_team(owner.team_id)
    for path in ("/chat", "/chat/stream", "/chat/stream/advanced"):
        response = await client.post(
            f"/v1/agents/bot{path}", json={"message": "hi"}, headers=headers
        )
        assert response.status_code == 403, path
        assert response.json()["error"] == "forbidden"
