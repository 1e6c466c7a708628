"""Validation at the edge: 422 with the error shape, never a 500."""

from __future__ import annotations

import httpx
import pytest

from tests.factories import create_agent, register


@pytest.mark.parametrize(
    "slug",
    ["Upper", "has space", "-leading", "trailing-", "under_score", "", "a" * 65, "dots.in.it", "é"],
)
async def test_bad_slugs_rejected(client: httpx.AsyncClient, slug: str) -> None:
    owner = await register(client)
    response = await client.post(
        "/v1/agents", json={"slug": slug, "name": "X", "model": "demo"}, headers=owner.headers
    )
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["error"] == "validation_error"
    assert body["request_id"] == response.headers["X-Request-ID"]
    assert body["details"]["errors"][0]["loc"][-1] == "slug"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("name", "n" * 101),
        ("instructions", "i" * 20_001),
        ("skills", ["no-such-skill"]),
        ("model", "   "),
        ("settings", {"temperature": 3}),
        ("settings", {"max_tokens": 0}),
        ("settings", {"top_k": 3}),
    ],
)
async def test_bad_agent_fields_rejected(
    client: httpx.AsyncClient, field: str, value: object
) -> None:
    owner = await register(client)
    payload = {"slug": "ok", "name": "Ok", "model": "demo", field: value}
    response = await client.post("/v1/agents", json=payload, headers=owner.headers)
    assert response.status_code == 422, response.text
    assert response.json()["error"] == "validation_error"


async def test_unknown_fields_rejected(client: httpx.AsyncClient) -> None:
    owner = await register(client)
    response = await client.post(
        "/v1/agents",
        json={"slug": "ok", "name": "Ok", "model": "demo", "team_id": "steal"},
        headers=owner.headers,
    )
    assert response.status_code == 422
    register_extra = await client.post(
        "/v1/auth/register", json={"email": "a@example.com", "password": "12345678", "admin": True}
    )
    assert register_extra.status_code == 422


async def test_chat_message_over_limit_and_empty_rejected(client: httpx.AsyncClient) -> None:
    owner = await register(client)
    await create_agent(client, owner, "bot")
    for message in ("", "x" * 10_001):
        response = await client.post(
            "/v1/agents/bot/chat", json={"message": message}, headers=owner.headers
        )
        assert response.status_code == 422
        assert response.json()["error"] == "validation_error"


async def test_malformed_json_and_bad_email(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/auth/register", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422
    bad_email = await client.post(
        "/v1/auth/register", json={"email": "not-an-email", "password": "12345678"}
    )
    assert bad_email.status_code == 422


async def test_bad_pagination_params(client: httpx.AsyncClient) -> None:
    owner = await register(client)
    for query in ("limit=0", "limit=101", "cursor=%%%", "cursor=bm90LWpzb24"):
        response = await client.get(f"/v1/agents?{query}", headers=owner.headers)
        assert response.status_code == 422, query
        assert response.json()["error"] == "validation_error"


async def test_unknown_route_uses_error_shape(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/nope")
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"
    assert response.json()["request_id"] == response.headers["X-Request-ID"]


async def test_oversized_body_is_413(client: httpx.AsyncClient) -> None:
    owner = await register(client)
    response = await client.post(
        "/v1/agents",
        content=b'{"slug":"x","name":"' + b"n" * 2_000_000 + b'"}',
        headers=owner.headers | {"Content-Type": "application/json"},
    )
    assert response.status_code == 413
    assert response.json()["error"] == "payload_too_large"


async def test_nul_characters_in_text_are_422_not_a_storage_error(
    client: httpx.AsyncClient,
) -> None:
    owner = await register(client)
    await create_agent(client, owner, "bot")
    for path, body in (
        ("/v1/teams", {"name": "bad\u0000name"}),
        ("/v1/agents", {"slug": "nul", "name": "x", "instructions": "a\u0000b", "model": "demo"}),
        ("/v1/memories", {"content": "remember \u0000 this"}),
        ("/v1/agents/bot/chat", {"message": "hi\u0000"}),
    ):
        response = await client.post(path, json=body, headers=owner.headers)
        assert response.status_code == 422, (path, response.text)
        assert response.json()["error"] == "validation_error"


async def test_lone_surrogates_in_text_are_422_not_a_storage_error(
    client: httpx.AsyncClient,
) -> None:
    """JSON's ``\\ud800`` escape decodes to a lone surrogate, which no database can store;
    pydantic refuses such a string (``string_unicode``), on every request model."""
    owner = await register(client)
    await create_agent(client, owner, "bot")
    headers = owner.headers | {"Content-Type": "application/json"}
    for path, body in (
        ("/v1/agents/bot/chat", b'{"message": "hi \\ud800"}'),
        ("/v1/agents/bot/chat/stream", b'{"message": "\\udc00 there"}'),
        ("/v1/memories", b'{"content": "remember \\ud83d"}'),
        ("/v1/agents/bot/chat", b'{"message": "hi", "\\ud800": 1}'),  # the key is reported
    ):
        response = await client.post(path, content=body, headers=headers)
        assert response.status_code == 422, (path, response.text)
        assert response.json()["error"] == "validation_error"
