"""Auth: register, login, refresh rotation, logout, me, API keys, tokens that must fail."""

from __future__ import annotations

import time
import uuid

import httpx
import jwt
import pytest
from argon2 import PasswordHasher

from agentstream.auth.tokens import AccessClaims, create_access_token, decode_access_token
from agentstream.settings import Settings
from tests.factories import add_member, create_agent, register


async def test_register_returns_user_team_and_tokens(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/auth/register",
        json={"email": "Ada@Example.com", "password": "s3cret-pass", "team_name": "Engines"},
    )
    assert response.status_code == 201
    body = response.json()
    assert body["user"]["email"] == "ada@example.com"
    assert body["team"]["name"] == "Engines"
    assert body["token_type"] == "bearer"
    assert body["expires_in"] > 0
    me = await client.get(
        "/v1/auth/me", headers={"Authorization": f"Bearer {body['access_token']}"}
    )
    assert me.status_code == 200
    assert me.json()["teams"] == [
        {"id": body["team"]["id"], "name": "Engines", "slug": body["team"]["slug"], "role": "owner"}
    ]


async def test_register_duplicate_email_conflicts(client: httpx.AsyncClient) -> None:
    account = await register(client)
    response = await client.post(
        "/v1/auth/register", json={"email": account.email.upper(), "password": "another-pass"}
    )
    assert response.status_code == 409
    assert response.json()["error"] == "conflict"


async def test_login_happy_path(client: httpx.AsyncClient) -> None:
    account = await register(client)
    response = await client.post(
        "/v1/auth/login", json={"email": account.email, "password": account.password}
    )
    assert response.status_code == 200
    assert response.json()["team"]["id"] == str(account.team_id)


async def test_wrong_password_and_unknown_email_get_the_same_response(
    client: httpx.AsyncClient,
) -> None:
    account = await register(client)
    wrong = await client.post(
        "/v1/auth/login", json={"email": account.email, "password": "not-the-password"}
    )
    unknown = await client.post(
        "/v1/auth/login", json={"email": "nobody@example.com", "password": "not-the-password"}
    )
    assert wrong.status_code == unknown.status_code == 401
    strip = lambda body: {k: v for k, v in body.items() if k != "request_id"}  # noqa: E731
    assert strip(wrong.json()) == strip(unknown.json())


async def test_unknown_email_costs_a_password_verification(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both failures run one argon2 verification, so timing does not reveal whether the
    email exists (the behaviour, counted; not a wall-clock ratio a busy machine can break)."""
    account = await register(client)
    verified: list[str] = []
    real_verify = PasswordHasher.verify

    def counting_verify(self: PasswordHasher, hash: str | bytes, password: str | bytes) -> bool:
        verified.append(hash if isinstance(hash, str) else hash.decode())
        return real_verify(self, hash, password)

    monkeypatch.setattr(PasswordHasher, "verify", counting_verify)

    async def failed_login(email: str) -> list[str]:
        verified.clear()
        response = await client.post(
            "/v1/auth/login", json={"email": email, "password": "wrong-password"}
        )
        assert response.status_code == 401
        return list(verified)

    known = await failed_login(account.email)
    unknown = await failed_login("ghost@example.com")
    assert len(known) == len(unknown) == 1
    # Same argon2 parameters on both paths, so the same cost.
    assert known[0].rsplit("$", 2)[0] == unknown[0].rsplit("$", 2)[0]


async def test_refresh_rotates_and_rejects_reuse(client: httpx.AsyncClient) -> None:
    account = await register(client)
    first = await client.post("/v1/auth/refresh", json={"refresh_token": account.refresh_token})
    assert first.status_code == 200
    new_pair = first.json()
    assert new_pair["refresh_token"] != account.refresh_token
    reuse = await client.post("/v1/auth/refresh", json={"refresh_token": account.refresh_token})
    assert reuse.status_code == 401
    assert reuse.json()["error"] == "unauthorized"
    again = await client.post("/v1/auth/refresh", json={"refresh_token": new_pair["refresh_token"]})
    assert again.status_code == 200


async def test_logout_revokes_refresh_token(client: httpx.AsyncClient) -> None:
    account = await register(client)
    out = await client.post("/v1/auth/logout", json={"refresh_token": account.refresh_token})
    assert out.status_code == 204
    response = await client.post("/v1/auth/refresh", json={"refresh_token": account.refresh_token})
    assert response.status_code == 401


async def test_access_token_as_refresh_token_is_401(client: httpx.AsyncClient) -> None:
    account = await register(client)
    for path in ("/v1/auth/refresh", "/v1/auth/logout"):
        response = await client.post(path, json={"refresh_token": account.access_token})
        assert response.status_code == 401, (path, response.text)
        assert response.json()["error"] == "unauthorized"
    # The real refresh token still works: the failed attempts spent nothing.
    response = await client.post("/v1/auth/refresh", json={"refresh_token": account.refresh_token})
    assert response.status_code == 200


async def test_logout_twice_is_idempotent(client: httpx.AsyncClient) -> None:
    account = await register(client)
    for _ in range(2):
        out = await client.post("/v1/auth/logout", json={"refresh_token": account.refresh_token})
        assert out.status_code == 204


async def test_expired_token_rejected(client: httpx.AsyncClient, settings: Settings) -> None:
    account = await register(client)
    token = create_access_token(settings.resolved_jwt_secret, account.user_id, account.team_id, -5)
    response = await client.get("/v1/agents", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert response.json()["error"] == "unauthorized"


async def test_token_signed_with_another_secret_rejected(client: httpx.AsyncClient) -> None:
    account = await register(client)
    token = create_access_token("another-secret-" + "y" * 32, account.user_id, account.team_id, 60)
    response = await client.get("/v1/agents", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401


async def test_alg_none_token_rejected(client: httpx.AsyncClient) -> None:
    account = await register(client)
    now = int(time.time())
    claims = {
        "sub": str(account.user_id),
        "team_id": str(account.team_id),
        "iat": now,
        "exp": now + 60,
        "type": "access",
    }
    token = jwt.encode(claims, key=None, algorithm="none")
    response = await client.get("/v1/agents", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401


async def test_missing_credentials_rejected(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/agents")
    assert response.status_code == 401
    assert response.json()["error"] == "unauthorized"


async def test_api_key_shown_once_works_both_headers_and_revocation(
    client: httpx.AsyncClient,
) -> None:
    owner = await register(client)
    created = await client.post("/v1/api-keys", json={"name": "ci"}, headers=owner.headers)
    assert created.status_code == 201
    key = created.json()["key"]
    assert key.startswith(created.json()["prefix"])
    listed = await client.get("/v1/api-keys", headers=owner.headers)
    assert "key" not in listed.json()["items"][0]
    assert (await client.get("/v1/agents", headers={"X-API-Key": key})).status_code == 200
    bearer = {"Authorization": f"Bearer {key}"}
    assert (await client.get("/v1/agents", headers=bearer)).status_code == 200

    revoke = await client.delete(f"/v1/api-keys/{created.json()['id']}", headers=owner.headers)
    assert revoke.status_code == 204
    response = await client.get("/v1/agents", headers={"X-API-Key": key})
    assert response.status_code == 401


async def test_api_key_cannot_exceed_creator_role(client: httpx.AsyncClient) -> None:
    owner = await register(client)
    admin = await register(client)
    await add_member(client, owner, admin, "admin")
    response = await client.post(
        "/v1/api-keys", json={"name": "root", "role": "owner"}, headers=admin.in_team(owner.team_id)
    )
    assert response.status_code == 403


async def test_removed_member_loses_access_immediately(client: httpx.AsyncClient) -> None:
    owner = await register(client)
    member = await register(client)
    await add_member(client, owner, member, "member")
    headers = member.in_team(owner.team_id)
    assert (await client.get("/v1/agents", headers=headers)).status_code == 200
    removed = await client.delete(
        f"/v1/teams/{owner.team_id}/members/{member.user_id}", headers=owner.headers
    )
    assert removed.status_code == 204
    # The same, still unexpired JWT no longer works for that team.
    response = await client.get("/v1/agents", headers=headers)
    assert response.status_code == 403
    assert response.json()["error"] == "forbidden"


async def test_x_team_id_for_foreign_team_is_forbidden(client: httpx.AsyncClient) -> None:
    alice = await register(client)
    bob = await register(client)
    response = await client.get("/v1/agents", headers=alice.in_team(bob.team_id))
    assert response.status_code == 403


async def test_viewer_cannot_create_agents(client: httpx.AsyncClient) -> None:
    owner = await register(client)
    viewer = await register(client)
    await add_member(client, owner, viewer, "viewer")
    response = await client.post(
        "/v1/agents",
        json={"slug": "nope", "name": "Nope", "model": "demo"},
        headers=viewer.in_team(owner.team_id),
    )
    assert response.status_code == 403
    assert response.json()["error"] == "forbidden"
    # ...but can read them.
    await create_agent(client, owner, "readable")
    listed = await client.get("/v1/agents", headers=viewer.in_team(owner.team_id))
    assert [a["slug"] for a in listed.json()["items"]] == ["readable"]


@pytest.mark.parametrize("role", ["member", "admin"])
async def test_member_cannot_manage_members(client: httpx.AsyncClient, role: str) -> None:
    """Only owners manage members (SPEC): a member, and even an admin, can neither add
    nor remove anyone, and the team is unchanged."""
    owner = await register(client)
    member = await register(client)
    colleague = await register(client)
    outsider = await register(client)
    await add_member(client, owner, member, role)
    await add_member(client, owner, colleague, "member")
    headers = member.in_team(owner.team_id)
    added = await client.post(
        f"/v1/teams/{owner.team_id}/members",
        json={"email": outsider.email, "role": "member"},
        headers=headers,
    )
    assert added.status_code == 403
    assert added.json()["error"] == "forbidden"
    removed = await client.delete(
        f"/v1/teams/{owner.team_id}/members/{colleague.user_id}", headers=headers
    )
    assert removed.status_code == 403
    assert removed.json()["error"] == "forbidden"
    listed = await client.get(f"/v1/teams/{owner.team_id}/members", headers=owner.headers)
    assert {m["user_id"] for m in listed.json()["items"]} == {
        str(owner.user_id),
        str(member.user_id),
        str(colleague.user_id),
    }


async def test_last_owner_cannot_be_removed(client: httpx.AsyncClient) -> None:
    owner = await register(client)
    response = await client.delete(
        f"/v1/teams/{owner.team_id}/members/{owner.user_id}", headers=owner.headers
    )
    assert response.status_code == 409


@pytest.mark.parametrize("bad_team", ["not-a-uuid"])
async def test_malformed_team_header_is_a_validation_error(
    client: httpx.AsyncClient, bad_team: str
) -> None:
    account = await register(client)
    response = await client.get("/v1/agents", headers=account.headers | {"X-Team-ID": bad_team})
    assert response.status_code == 422
    assert response.json()["error"] == "validation_error"


async def test_unknown_user_token_rejected(client: httpx.AsyncClient, settings: Settings) -> None:
    token = create_access_token(settings.resolved_jwt_secret, uuid.uuid4(), uuid.uuid4(), 60)
    response = await client.get("/v1/agents", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401


def test_access_token_expiry_against_an_injected_clock() -> None:
    """``now`` moves the expiry check's clock; the 1 s leeway is PyJWT's own rule."""
    secret = "clock-secret-" + "z" * 32
    user, team = uuid.uuid4(), uuid.uuid4()
    token = create_access_token(secret, user, team, 60)
    expires = jwt.decode(token, options={"verify_signature": False})["exp"]
    assert decode_access_token(secret, token, now=expires - 30) == AccessClaims(user, team)
    assert decode_access_token(secret, token, now=expires + 0.5) is not None  # leeway
    assert decode_access_token(secret, token, now=expires + 1) is None
    assert decode_access_token(secret, token, now=expires + 3600) is None
    # Without a clock the real one decides: this token is valid for another minute.
    assert decode_access_token(secret, token) == AccessClaims(user, team)
    assert decode_access_token("another-secret-" + "y" * 32, token, now=expires - 30) is None
