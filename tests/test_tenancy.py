"""Tenancy: another team sees 404 for every id of the first team and cannot list them."""

from __future__ import annotations

import httpx

from tests.factories import Account, add_member, create_agent, register


async def _first_team_world(client: httpx.AsyncClient) -> tuple[Account, dict[str, str]]:
    owner = await register(client, "owner")
    await create_agent(client, owner, "secret-agent")
    chat = await client.post(
        "/v1/agents/secret-agent/chat", json={"message": "hello"}, headers=owner.headers
    )
    assert chat.status_code == 200, chat.text
    key = await client.post("/v1/api-keys", json={"name": "k"}, headers=owner.headers)
    memory = await client.post(
        "/v1/memories", json={"content": "the launch code is 42"}, headers=owner.headers
    )
    member = await register(client, "member")
    await add_member(client, owner, member, "member")
    ids = {
        "conversation": chat.json()["conversation_id"],
        "api_key": key.json()["id"],
        "member": str(member.user_id),
        "memory": memory.json()["id"],
    }
    return owner, ids


async def test_other_team_gets_404_for_every_foreign_id(client: httpx.AsyncClient) -> None:
    owner, ids = await _first_team_world(client)
    intruder = await register(client, "intruder")
    h = intruder.headers
    checks = [
        ("GET", "/v1/agents/secret-agent", "agent_not_found"),
        ("PATCH", "/v1/agents/secret-agent", "agent_not_found"),
        ("DELETE", "/v1/agents/secret-agent", "agent_not_found"),
        ("GET", f"/v1/conversations/{ids['conversation']}", "conversation_not_found"),
        ("GET", f"/v1/conversations/{ids['conversation']}/messages", "conversation_not_found"),
        ("DELETE", f"/v1/conversations/{ids['conversation']}", "conversation_not_found"),
        ("DELETE", f"/v1/api-keys/{ids['api_key']}", "api_key_not_found"),
        ("DELETE", f"/v1/memories/{ids['memory']}", "memory_not_found"),
        ("GET", f"/v1/teams/{owner.team_id}", "team_not_found"),
        ("GET", f"/v1/teams/{owner.team_id}/members", "team_not_found"),
        ("DELETE", f"/v1/teams/{owner.team_id}/members/{ids['member']}", "team_not_found"),
    ]
    for method, path, code in checks:
        kwargs = {"json": {"name": "x"}} if method == "PATCH" else {}
        response = await client.request(method, path, headers=h, **kwargs)
        assert response.status_code == 404, (method, path, response.text)
        assert response.json()["error"] == code, (method, path)
    # Continuing the foreign conversation through an agent of the intruder's own team.
    await create_agent(client, intruder, "secret-agent")
    response = await client.post(
        "/v1/agents/secret-agent/chat",
        json={"message": "hi", "conversation_id": ids["conversation"]},
        headers=h,
    )
    assert response.status_code == 404
    assert response.json()["error"] == "conversation_not_found"


async def test_other_team_lists_nothing_of_the_first(client: httpx.AsyncClient) -> None:
    await _first_team_world(client)
    intruder = await register(client, "intruder")
    for path in ("/v1/agents", "/v1/conversations", "/v1/api-keys", "/v1/memories"):
        response = await client.get(path, headers=intruder.headers)
        assert response.status_code == 200, path
        assert response.json()["items"] == [], path
    teams = await client.get("/v1/teams", headers=intruder.headers)
    assert [t["id"] for t in teams.json()["items"]] == [str(intruder.team_id)]
    usage = await client.get("/v1/usage", headers=intruder.headers)
    assert usage.status_code == 200
    assert usage.json()["total"]["runs"] == 0


async def test_team_member_cannot_read_or_continue_anothers_conversation(
    client: httpx.AsyncClient,
) -> None:
    owner, ids = await _first_team_world(client)
    colleague = await register(client, "colleague")
    await add_member(client, owner, colleague, "admin")
    headers = colleague.in_team(owner.team_id)
    read = await client.get(f"/v1/conversations/{ids['conversation']}", headers=headers)
    assert read.status_code == 404
    listed = await client.get("/v1/conversations", headers=headers)
    assert listed.json()["items"] == []
    cont = await client.post(
        "/v1/agents/secret-agent/chat",
        json={"message": "hi", "conversation_id": ids["conversation"]},
        headers=headers,
    )
    assert cont.status_code == 404


async def test_conversation_id_with_another_agents_slug_is_not_found(
    client: httpx.AsyncClient,
) -> None:
    owner, ids = await _first_team_world(client)
    await create_agent(client, owner, "second")
    response = await client.post(
        "/v1/agents/second/chat",
        json={"message": "hi", "conversation_id": ids["conversation"]},
        headers=owner.headers,
    )
    assert response.status_code == 404
    assert response.json()["error"] == "conversation_not_found"
