"""Agents: CRUD by slug, 409 on duplicates, archive on delete, skills defaults."""

from __future__ import annotations

import httpx

from tests.factories import create_agent, register


async def test_create_get_list_agent(client: httpx.AsyncClient) -> None:
    owner = await register(client)
    created = await create_agent(
        client, owner, "writer", instructions="Be brief.", settings={"temperature": 0.2}
    )
    assert created["slug"] == "writer"
    assert created["status"] == "active"
    assert created["settings"] == {"temperature": 0.2, "max_tokens": None, "multitask": None}
    got = await client.get("/v1/agents/writer", headers=owner.headers)
    assert got.status_code == 200
    assert got.json() == created
    listed = await client.get("/v1/agents", headers=owner.headers)
    assert [a["slug"] for a in listed.json()["items"]] == ["writer"]


async def test_skills_default_to_all_and_empty_means_none(client: httpx.AsyncClient) -> None:
    owner = await register(client)
    available = await client.get("/v1/skills", headers=owner.headers)
    names = sorted(s["name"] for s in available.json()["items"])
    assert names, "the package ships built-in skills"
    assert (await create_agent(client, owner, "all"))["skills"] == names
    assert (await create_agent(client, owner, "none", skills=[]))["skills"] == []
    one = await create_agent(client, owner, "one", skills=[names[0]])
    assert one["skills"] == [names[0]]


async def test_duplicate_slug_conflicts_but_other_team_may_reuse(
    client: httpx.AsyncClient,
) -> None:
    owner = await register(client)
    await create_agent(client, owner, "dup")
    again = await client.post(
        "/v1/agents", json={"slug": "dup", "name": "Dup", "model": "demo"}, headers=owner.headers
    )
    assert again.status_code == 409
    assert again.json()["error"] == "conflict"
    other = await register(client)
    await create_agent(client, other, "dup")


async def test_patch_pauses_and_chat_is_refused(client: httpx.AsyncClient) -> None:
    owner = await register(client)
    await create_agent(client, owner, "bot")
    paused = await client.patch(
        "/v1/agents/bot", json={"status": "paused", "name": "Bot 2"}, headers=owner.headers
    )
    assert paused.status_code == 200
    assert paused.json()["status"] == "paused"
    assert paused.json()["name"] == "Bot 2"
    chat = await client.post("/v1/agents/bot/chat", json={"message": "hi"}, headers=owner.headers)
    assert chat.status_code == 409
    assert chat.json()["error"] == "agent_inactive"


async def test_delete_archives(client: httpx.AsyncClient) -> None:
    owner = await register(client)
    await create_agent(client, owner, "old")
    assert (await client.delete("/v1/agents/old", headers=owner.headers)).status_code == 204
    got = await client.get("/v1/agents/old", headers=owner.headers)
    assert got.json()["status"] == "archived"
    listed = await client.get("/v1/agents", headers=owner.headers)
    assert listed.json()["items"] == []
    archived = await client.get("/v1/agents?include_archived=true", headers=owner.headers)
    assert [a["slug"] for a in archived.json()["items"]] == ["old"]
    chat = await client.post("/v1/agents/old/chat", json={"message": "hi"}, headers=owner.headers)
    assert chat.json()["error"] == "agent_inactive"


async def test_unknown_agent_is_404(client: httpx.AsyncClient) -> None:
    owner = await register(client)
    response = await client.get("/v1/agents/ghost", headers=owner.headers)
    assert response.status_code == 404
    assert response.json()["error"] == "agent_not_found"


async def test_cursor_pagination_walks_every_agent_once(client: httpx.AsyncClient) -> None:
    owner = await register(client)
    slugs = {f"agent-{i}" for i in range(7)}
    for slug in slugs:
        await create_agent(client, owner, slug)
    seen: list[str] = []
    cursor = None
    while True:
        query = "limit=3" + (f"&cursor={cursor}" if cursor else "")
        page = (await client.get(f"/v1/agents?{query}", headers=owner.headers)).json()
        seen += [a["slug"] for a in page["items"]]
        if not page["has_more"]:
            assert page["cursor"] is None
            break
        cursor = page["cursor"]
    assert sorted(seen) == sorted(slugs)
    assert len(seen) == len(slugs)


async def test_unknown_model_provider_is_422_listing_known_providers(
    client: httpx.AsyncClient,
) -> None:
    owner = await register(client)
    created = await client.post(
        "/v1/agents", json={"slug": "x", "name": "X", "model": "Xza1:6"}, headers=owner.headers
    )
    assert created.status_code == 422, created.text
    body = created.json()
    assert body["error"] == "validation_error"
    assert {"demo", "openai", "openai-responses", "anthropic"} <= set(
        body["details"]["known_providers"]
    )
    await create_agent(client, owner, "ok")
    patched = await client.patch("/v1/agents/ok", json={"model": "Xza1:6"}, headers=owner.headers)
    assert patched.status_code == 422
    assert patched.json()["error"] == "validation_error"
    unchanged = await client.get("/v1/agents/ok", headers=owner.headers)
    assert unchanged.json()["model"] == "demo"


async def test_agents_cannot_run_on_the_test_double(client: httpx.AsyncClient) -> None:
    owner = await register(client)
    response = await client.post(
        "/v1/agents", json={"slug": "x", "name": "X", "model": "test"}, headers=owner.headers
    )
    assert response.status_code == 422


async def test_known_providers_accepted_without_api_keys(client: httpx.AsyncClient) -> None:
    owner = await register(client)
    for i, model in enumerate(["openai:gpt-4o-mini", "openai-responses:gpt-5", "anthropic:c"]):
        agent = await create_agent(client, owner, f"a{i}", model=model)
        assert agent["model"] == model


async def test_multitask_setting_is_validated_on_create_and_patch(
    client: httpx.AsyncClient,
) -> None:
    owner = await register(client)
    bad = await client.post(
        "/v1/agents",
        json={"slug": "q", "name": "Q", "model": "demo", "settings": {"multitask": "later"}},
        headers=owner.headers,
    )
    assert (bad.status_code, bad.json()["error"]) == (422, "validation_error")
    assert "multitask" in bad.text
    created = await create_agent(client, owner, "q", settings={"multitask": "enqueue"})
    assert created["settings"]["multitask"] == "enqueue"
    patched = await client.patch(
        "/v1/agents/q", json={"settings": {"multitask": "interrupt"}}, headers=owner.headers
    )
    assert patched.json()["settings"]["multitask"] == "interrupt"
    refused = await client.patch(
        "/v1/agents/q", json={"settings": {"multitask": "queue"}}, headers=owner.headers
    )
    assert (refused.status_code, refused.json()["error"]) == (422, "validation_error")
    kept = await client.get("/v1/agents/q", headers=owner.headers)
    assert kept.json()["settings"]["multitask"] == "interrupt"
