"""Streaming fixtures: an owner with an agent on a scripted model."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import httpx
import pytest

from agentstream.state import AppState
from tests.factories import Account, create_agent, register
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
