"""Credentials that cannot be valid are refused before any database work, and a WebSocket
``ping`` does none either (its token's expiry is still checked, on every frame)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from httpx_ws import AsyncWebSocketSession, aconnect_ws
from httpx_ws.transport import ASGIWebSocketTransport
from sqlalchemy import event

from agentstream.auth import tokens
from agentstream.kit.context import request_id_var
from agentstream.state import AppState
from tests.factories import Account, create_agent, register
from tests.streaming.test_websocket import expect_close

WATCHED = "watched-"


@pytest.fixture
def checkouts(state: AppState) -> Iterator[list[str]]:
    """Database connections checked out on behalf of requests whose id starts ``watched-``."""
    seen: list[str] = []
    pool = state.engine.sync_engine.pool

    def on_checkout(*_: Any) -> None:
        if request_id_var.get().startswith(WATCHED):
            seen.append(request_id_var.get())

    event.listen(pool, "checkout", on_checkout)
    yield seen
    event.remove(pool, "checkout", on_checkout)


def _watched() -> dict[str, str]:
    return {"X-Request-ID": f"{WATCHED}{uuid.uuid4().hex}"}


def _bad_credentials(state: AppState, account: Account) -> dict[str, dict[str, str]]:
    expired = tokens.create_access_token(
        state.settings.resolved_jwt_secret, account.user_id, account.team_id, ttl_s=-5
    )
    forged = tokens.create_access_token("another-secret-" + "y" * 32, account.user_id, None, 60)
    return {
        "garbage": {"Authorization": "Bearer not-a-jwt"},
        "malformed jwt": {"Authorization": "Bearer eyJhbGciOiJIUzI1NiJ9.e30.x"},
        "forged": {"Authorization": f"Bearer {forged}"},
        "expired": {"Authorization": f"Bearer {expired}"},
        "malformed api key": {"X-API-Key": "as_short"},
    }


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/agents"),
        ("GET", "/v1/auth/me"),
        ("GET", "/v1/teams"),
        ("GET", "/v1/usage"),
        ("POST", "/v1/agents/helper/chat/stream"),
        ("POST", "/v1/agents/helper/chat"),
    ],
)
async def test_a_bad_credential_is_refused_before_any_database_work(
    client: httpx.AsyncClient, state: AppState, checkouts: list[str], method: str, path: str
) -> None:
    account = await register(client)
    await create_agent(client, account, "helper")
    for name, headers in _bad_credentials(state, account).items():
        response = await client.request(
            method, path, json={"message": "hi"}, headers=headers | _watched()
        )
        assert response.status_code == 401, (name, response.text)
        assert response.json()["error"] == "unauthorized"
    assert checkouts == []


async def test_a_well_formed_api_key_is_still_looked_up(
    client: httpx.AsyncClient, checkouts: list[str]
) -> None:
    unknown = tokens.new_api_key()  # the right shape, but never issued
    response = await client.get("/v1/agents", headers={"X-API-Key": unknown} | _watched())
    assert response.status_code == 401
    assert len(checkouts) == 1


@asynccontextmanager
async def _socket(app: FastAPI, path: str) -> AsyncIterator[AsyncWebSocketSession]:
    headers = _watched()
    async with (
        httpx.AsyncClient(
            transport=ASGIWebSocketTransport(app), base_url="http://test", headers=headers
        ) as http,
        aconnect_ws(path, http, keepalive_ping_interval_seconds=None) as ws,
    ):
        yield ws


async def test_a_websocket_with_a_bad_token_is_closed_before_any_database_work(
    app: FastAPI, client: httpx.AsyncClient, state: AppState, checkouts: list[str]
) -> None:
    account = await register(client)
    expired = tokens.create_access_token(
        state.settings.resolved_jwt_secret, account.user_id, account.team_id, ttl_s=-5
    )
    for token in ("garbage", expired, "as_short"):
        async with _socket(app, f"/v1/agents/helper/ws?token={token}") as ws:
            await expect_close(ws, 4001)
    assert checkouts == []


async def test_a_websocket_ping_does_no_database_work(
    app: FastAPI, client: httpx.AsyncClient, checkouts: list[str]
) -> None:
    account = await register(client)
    # An API key: never cached, so every check of it is a query.
    created = await client.post("/v1/api-keys", json={"name": "ws"}, headers=account.headers)
    key = created.json()["key"]
    async with _socket(app, f"/v1/agents/helper/ws?token={key}") as ws:
        assert (await ws.receive_json())["type"] == "auth_ok"
        connected = len(checkouts)
        for _ in range(3):
            await ws.send_json({"type": "ping"})
            assert await ws.receive_json() == {"type": "pong"}
        assert len(checkouts) == connected  # no query for the pings
        await ws.send_json({"type": "cancel"})  # any other frame re-checks the key
        await ws.send_json({"type": "ping"})
        assert await ws.receive_json() == {"type": "pong"}
        assert len(checkouts) == connected + 1


async def test_a_ping_after_the_token_expired_closes_the_socket(
    app: FastAPI, client: httpx.AsyncClient, state: AppState, monkeypatch: pytest.MonkeyPatch
) -> None:
    account = await register(client)
    async with _socket(app, f"/v1/agents/helper/ws?token={account.access_token}") as ws:
        assert (await ws.receive_json())["type"] == "auth_ok"
        # The token's expiry passes (plus the 1 s leeway) while the socket is open.
        real = tokens.decode_access_token
        late = state.settings.access_token_ttl_s + 1.5
        monkeypatch.setattr(
            tokens,
            "decode_access_token",
            lambda secret, token, now=None: real(secret, token, now=tokens.time.time() + late),
        )
        await ws.send_json({"type": "ping"})
        error = await ws.receive_json()
        assert (error["type"], error["error_code"]) == ("error", "unauthorized")
        await expect_close(ws, 4001)
