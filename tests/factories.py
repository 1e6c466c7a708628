"""Test factories: create users, teams and agents through the real API."""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass
from typing import Any

import httpx

from agentstream.conversations.turns import RunIdentity

_counter = itertools.count()


@dataclass
class Account:
    """A registered user with a token for their personal team."""

    user_id: uuid.UUID
    team_id: uuid.UUID
    email: str
    password: str
    access_token: str
    refresh_token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}

    def in_team(self, team_id: uuid.UUID) -> dict[str, str]:
        return self.headers | {"X-Team-ID": str(team_id)}


async def register(client: httpx.AsyncClient, name: str | None = None) -> Account:
    """Register a fresh user (with a personal team) and return their credentials."""
    label = name or f"user{next(_counter)}"
    email = f"{label}-{uuid.uuid4().hex[:8]}@example.com"
    password = "correct horse battery"
    response = await client.post(
        "/v1/auth/register", json={"email": email, "password": password, "display_name": label}
    )
    assert response.status_code == 201, response.text
    body = response.json()
    return Account(
        user_id=uuid.UUID(body["user"]["id"]),
        team_id=uuid.UUID(body["team"]["id"]),
        email=email,
        password=password,
        access_token=body["access_token"],
        refresh_token=body["refresh_token"],
    )


async def create_agent(
    client: httpx.AsyncClient, account: Account, slug: str = "helper", **fields: Any
) -> dict[str, Any]:
    """Create an agent in the account's team (the account must be admin or owner)."""
    payload = {"slug": slug, "name": slug.title(), "model": "demo"} | fields
    response = await client.post("/v1/agents", json=payload, headers=account.headers)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def add_member(client: httpx.AsyncClient, owner: Account, member: Account, role: str) -> None:
    """Add ``member`` to ``owner``'s personal team with ``role``."""
    response = await client.post(
        f"/v1/teams/{owner.team_id}/members",
        json={"email": member.email, "role": role},
        headers=owner.headers,
    )
    assert response.status_code == 201, response.text


def run_identity() -> RunIdentity:
    """A run identity of made-up ids, for tests of tools and models that need no rows."""
    return RunIdentity(
        run_id=uuid.uuid4(),
        team_id=uuid.uuid4(),
        user_id=uuid.uuid4(),
        agent_id=uuid.uuid4(),
        agent_slug="bot",
        model="demo",
        conversation_id=uuid.uuid4(),
        user_message_id=uuid.uuid4(),
    )
