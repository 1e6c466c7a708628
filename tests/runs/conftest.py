"""Runs fixtures: the app on a real in-loop uvicorn, an owner and a scripted agent."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from tests.live import serve_in_loop
from tests.streaming.conftest import owner, script, scripted_agent  # noqa: F401 (fixtures)


@pytest.fixture
async def live(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client of the app served by uvicorn (responses stream as they are sent)."""
    async with (
        serve_in_loop(app) as url,
        httpx.AsyncClient(base_url=url, timeout=30) as http,
    ):
        yield http
