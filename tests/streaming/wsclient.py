"""In-process WebSocket client helpers (httpx-ws over the ASGI app, same event loop)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI
from httpx_ws import AsyncWebSocketSession, aconnect_ws
from httpx_ws.transport import ASGIWebSocketTransport


@asynccontextmanager
async def ws_connect(app: FastAPI, path: str) -> AsyncIterator[AsyncWebSocketSession]:
    """Open a WebSocket to ``path`` on the in-process app."""
    async with (
        httpx.AsyncClient(transport=ASGIWebSocketTransport(app), base_url="http://test") as http,
        aconnect_ws(path, http, keepalive_ping_interval_seconds=None) as ws,
    ):
        yield ws


async def receive_until_terminal(ws: AsyncWebSocketSession) -> list[dict[str, Any]]:
    """Events of one run, up to and including ``done`` or ``error``."""
    events: list[dict[str, Any]] = []
    while True:
        event = await ws.receive_json()
        events.append(event)
        if event["type"] in ("done", "error"):
            return events
