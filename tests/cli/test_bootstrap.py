"""First run: the demo account that `serve` creates can log in and chat."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from agentstream.app import build_state, create_app
from agentstream.bootstrap import DEMO_EMAIL, DEMO_PASSWORD, ensure_demo
from agentstream.migrations import upgrade
from tests.conftest import make_settings


async def test_demo_account_logs_in_and_chats_and_is_created_once(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}"
    await asyncio.to_thread(upgrade, url)  # Alembic runs its own event loop
    settings = make_settings(url, tmp_path)
    async with build_state(settings) as state:
        demo = await ensure_demo(state)
        assert demo is not None
        assert await ensure_demo(state) is None  # only on an empty database
        app = create_app(settings)
        app.state.agentstream = state
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            login = await client.post(
                "/v1/auth/login", json={"email": DEMO_EMAIL, "password": DEMO_PASSWORD}
            )
            assert login.status_code == 200, login.text
            headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
            chat = await client.post(
                "/v1/agents/demo/chat", json={"message": "hello"}, headers=headers
            )
            assert chat.status_code == 200
            assert "demo model" in chat.json()["response"]
