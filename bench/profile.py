"""Profile chat requests in-process (pyinstrument) and split the time by layer."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import Any

import httpx
from pyinstrument import Profiler
from pyinstrument.frame import Frame

from agentstream.app import build_state, create_app
from agentstream.migrations import upgrade
from agentstream.settings import Settings

# Walking up from the frame that spent the time, the first match names the layer.
CATEGORIES: list[tuple[str, tuple[str, ...]]] = [
    ("database", ("sqlalchemy", "aiosqlite", "asyncpg", "sqlite3", "agentstream/db.py")),
    ("auth", ("agentstream/auth", "/jwt/", "argon2")),
    ("memory", ("agentstream/memory",)),
    ("model", ("pydantic_ai", "pydantic_graph", "agentstream/llm")),
    ("encoding", ("agentstream/streaming", "agentstream/chat/events.py", "orjson")),
    ("chat flow", ("agentstream/chat",)),
    ("framework", ("fastapi", "starlette", "httpx", "anyio", "h11")),
]


def _category(frame: Frame | None) -> str:
    while frame is not None:
        path = frame.file_path or ""
        for name, needles in CATEGORIES:
            if any(needle in path for needle in needles):
                return name
        frame = frame.parent
    return "other (asyncio, interpreter)"


def _walk(frame: Frame, totals: dict[str, float]) -> None:
    if frame.total_self_time:
        key = _category(frame)
        totals[key] = totals.get(key, 0.0) + frame.total_self_time
    for child in frame.children:
        _walk(child, totals)


async def _profile(requests: int, out_dir: Path) -> dict[str, Any]:
    data = Path(tempfile.mkdtemp(prefix="agentstream-profile-"))
    url = f"sqlite+aiosqlite:///{data / 'profile.db'}"
    await asyncio.to_thread(upgrade, url)
    settings = Settings(
        database_url=url,
        data_dir=data,
        jwt_secret="profile-" + "x" * 32,
        demo_token_delay_ms=0,
        rate_limit_chat=0,
        rate_limit_api=0,
        rate_limit_auth=0,
        log_level="WARNING",
    )
    async with build_state(settings) as state:
        app = create_app(settings)
        app.state.agentstream = state
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as http:
            reg = await http.post(
                "/v1/auth/register", json={"email": "p@example.com", "password": "profile-pw"}
            )
            headers = {"Authorization": f"Bearer {reg.json()['access_token']}"}
            await http.post(
                "/v1/agents",
                json={
                    "slug": "bench",
                    "name": "Bench",
                    "model": "demo",
                    "settings": {"max_tokens": 100},
                },
                headers=headers,
            )
            body = {"message": "tell me a long story"}
            path = "/v1/agents/bench/chat/stream/advanced"
            await http.post(path, json=body, headers=headers)  # warm caches
            profiler = Profiler(interval=0.0002, async_mode="enabled")
            profiler.start()
            for _ in range(requests):
                await http.post(path, json=body, headers=headers)
            profiler.stop()
    session = profiler.last_session
    assert session is not None
    root = session.root_frame()
    totals: dict[str, float] = {}
    if root is not None:
        _walk(root, totals)
    (out_dir / "profile.txt").write_text(profiler.output_text(unicode=False, color=False))
    whole = sum(totals.values()) or 1.0
    return {
        "requests": requests,
        "per_request_ms": {k: v * 1000 / requests for k, v in totals.items()},
        "share": {k: v / whole for k, v in totals.items()},
    }


def profile_requests(requests: int, out_dir: Path) -> dict[str, Any]:
    """Profile ``requests`` advanced-SSE chats (100 tokens, zero delay) on SQLite."""
    out_dir.mkdir(parents=True, exist_ok=True)
    return asyncio.run(_profile(requests, out_dir))
