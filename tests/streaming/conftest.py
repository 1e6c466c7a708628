"""Streaming fixtures: an owner with an agent on a scripted model, the app on a real server, and
a conversation kept busy by a held turn."""

from __future__ import annotations

import functools
import uuid
from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from fastapi import FastAPI

from agentstream.state import AppState
from tests.factories import Account, create_agent, register
from tests.live import serve_in_loop
from tests.streaming.multitask import MakeAgent, StartBusy, busy_conversation
from tests.streaming.scripted import Script


@pytest.fixture
async def owner(client: httpx.AsyncClient) -> Account:
    return await register(client, "owner")


@pytest.fixture
def script() -> Script:
    return Script()


@pytest.fixture
def scripted_agent(
    client: httpx.AsyncClient, state: AppState, owner: Account
) -> Callable[..., object]:
    """Create an agent whose model is ``script`` (or a given one); returns its slug."""

    async def make(script: Script, slug: str = "bot", **fields: object) -> str:
        name = f"scripted:{uuid.uuid4().hex[:8]}"
        state.models.register(name, script.model())
        await create_agent(client, owner, slug, model=name, **fields)
        return slug

    return make


@pytest.fixture
async def live(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """The app on a real uvicorn in this loop (streams arrive as they are sent)."""
    async with serve_in_loop(app) as url, httpx.AsyncClient(base_url=url, timeout=30) as http:
        yield http


@pytest.fixture
def busy(
    app: FastAPI, live: httpx.AsyncClient, owner: Account, scripted_agent: MakeAgent
) -> StartBusy:
    """``async with busy(**agent_fields) as held``: a scripted agent's conversation whose first
    turn is held (``busy_conversation``)."""
    return functools.partial(busy_conversation, app, live, owner, scripted_agent)
