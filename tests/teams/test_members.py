"""Members and roles: only owners manage them, and a team always keeps an owner, also when
two owners act against each other at the same moment."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from agentstream.teams import service
from tests.factories import Account, add_member, register


def _member_path(team_id: uuid.UUID, user_id: uuid.UUID) -> str:
    return f"/v1/teams/{team_id}/members/{user_id}"


async def _roles(client: httpx.AsyncClient, owner: Account) -> dict[uuid.UUID, str]:
    listed = await client.get(f"/v1/teams/{owner.team_id}/members", headers=owner.headers)
    assert listed.status_code == 200, listed.text
    return {uuid.UUID(m["user_id"]): m["role"] for m in listed.json()["items"]}


async def test_an_owner_changes_a_members_role_and_it_applies_at_once(
    client: httpx.AsyncClient,
) -> None:
    owner, admin = await register(client), await register(client)
    await add_member(client, owner, admin, "admin")
    headers = admin.in_team(owner.team_id)
    created = await client.post("/v1/agents", json={"slug": "a1", "name": "A"}, headers=headers)
    assert created.status_code == 201, created.text
    changed = await client.patch(
        _member_path(owner.team_id, admin.user_id), json={"role": "viewer"}, headers=owner.headers
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["role"] == "viewer"
    refused = await client.post("/v1/agents", json={"slug": "a2", "name": "B"}, headers=headers)
    assert refused.status_code == 403


async def test_only_owners_change_roles(client: httpx.AsyncClient) -> None:
    owner, admin = await register(client), await register(client)
    await add_member(client, owner, admin, "admin")
    refused = await client.patch(
        _member_path(owner.team_id, admin.user_id),
        json={"role": "owner"},
        headers=admin.in_team(owner.team_id),
    )
    assert refused.status_code == 403
    unknown = await client.patch(
        _member_path(owner.team_id, uuid.uuid4()), json={"role": "member"}, headers=owner.headers
    )
    assert unknown.status_code == 404


async def test_the_last_owner_can_be_neither_removed_nor_demoted(
    client: httpx.AsyncClient,
) -> None:
    owner = await register(client)
    path = _member_path(owner.team_id, owner.user_id)
    demoted = await client.patch(path, json={"role": "admin"}, headers=owner.headers)
    assert demoted.status_code == 409, demoted.text
    assert (await client.delete(path, headers=owner.headers)).status_code == 409
    assert await _roles(client, owner) == {owner.user_id: "owner"}


Act = Callable[[httpx.AsyncClient, Account, Account, uuid.UUID], Awaitable[httpx.Response]]


async def _remove(
    client: httpx.AsyncClient, actor: Account, target: Account, team: uuid.UUID
) -> httpx.Response:
    return await client.delete(_member_path(team, target.user_id), headers=actor.in_team(team))


async def _demote(
    client: httpx.AsyncClient, actor: Account, target: Account, team: uuid.UUID
) -> httpx.Response:
    return await client.patch(
        _member_path(team, target.user_id), json={"role": "member"}, headers=actor.in_team(team)
    )


@pytest.mark.parametrize(
    ("first", "second"),
    [(_remove, _remove), (_demote, _demote), (_remove, _demote)],
    ids=["remove-remove", "demote-demote", "remove-demote"],
)
async def test_two_owners_acting_against_each_other_at_once_leave_one_owner(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch, first: Act, second: Act
) -> None:
    one, two = await register(client), await register(client)
    await add_member(client, one, two, "owner")
    # Both requests are authenticated and inside the service before either reads a row.
    both_in = asyncio.Barrier(2)
    for name in ("remove_member", "change_role"):
        real = getattr(service, name)

        async def arrive(*args: Any, _real: Any = real) -> Any:
            await both_in.wait()
            return await _real(*args)

        monkeypatch.setattr(service, name, arrive)
    answers = await asyncio.wait_for(
        asyncio.gather(first(client, one, two, one.team_id), second(client, two, one, one.team_id)),
        timeout=30,
    )
    assert sorted(a.status_code for a in answers) in ([200, 409], [204, 409]), [
        a.text for a in answers
    ]
    roles = await _roles(client, one if answers[0].is_success else two)
    assert list(roles.values()).count("owner") == 1
