"""Conversations: list (per agent), get, messages in order, delete."""

from __future__ import annotations

import httpx

from tests.factories import create_agent, register


async def test_conversation_lifecycle(client: httpx.AsyncClient) -> None:
    owner = await register(client)
    await create_agent(client, owner, "a")
    await create_agent(client, owner, "b")
    first = await client.post("/v1/agents/a/chat", json={"message": "one"}, headers=owner.headers)
    conversation_id = first.json()["conversation_id"]
    second = await client.post(
        "/v1/agents/a/chat",
        json={"message": "two", "conversation_id": conversation_id},
        headers=owner.headers,
    )
    assert second.json()["conversation_id"] == conversation_id
    await client.post("/v1/agents/b/chat", json={"message": "other"}, headers=owner.headers)

    all_conversations = await client.get("/v1/conversations", headers=owner.headers)
    assert len(all_conversations.json()["items"]) == 2
    only_a = await client.get("/v1/conversations?agent=a", headers=owner.headers)
    assert [c["id"] for c in only_a.json()["items"]] == [conversation_id]

    messages = await client.get(
        f"/v1/conversations/{conversation_id}/messages", headers=owner.headers
    )
    items = messages.json()["items"]
    assert [(m["role"], m["status"]) for m in items] == [
        ("user", "complete"),
        ("assistant", "complete"),
        ("user", "complete"),
        ("assistant", "complete"),
    ]
    assert [m["content"] for m in items[::2]] == ["one", "two"]
    assert items[1]["id"] == first.json()["message_id"]
    assert items[1]["content"] == first.json()["response"]
    assert items[1]["usage"]["model"] == "demo"

    deleted = await client.delete(f"/v1/conversations/{conversation_id}", headers=owner.headers)
    assert deleted.status_code == 204
    gone = await client.get(f"/v1/conversations/{conversation_id}", headers=owner.headers)
    assert gone.status_code == 404
    assert gone.json()["error"] == "conversation_not_found"
