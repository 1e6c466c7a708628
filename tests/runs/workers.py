"""Workers sharing runs through Redis, in process: each its own app state on a real uvicorn."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
from fastapi import FastAPI

from agentstream.app import build_state, create_app
from agentstream.state import AppState
from tests.conftest import make_settings
from tests.live import serve_in_loop


@dataclass
class Worker:
    """One worker: its state (registry, coordinator), its app and an HTTP client of it."""

    state: AppState
    app: FastAPI
    http: httpx.AsyncClient


@contextlib.asynccontextmanager
async def worker(
    database_url: str, tmp_path: Path, redis_url: str, **overrides: object
) -> AsyncIterator[Worker]:
    """One worker on a real in-loop uvicorn."""
    settings = make_settings(database_url, tmp_path, redis_url=redis_url, **overrides)
    async with build_state(settings) as state:
        app: FastAPI = create_app(settings)
        app.state.agentstream = state
        async with (
            serve_in_loop(app) as url,
            httpx.AsyncClient(base_url=url, timeout=30) as http,
        ):
            yield Worker(state, app, http)
