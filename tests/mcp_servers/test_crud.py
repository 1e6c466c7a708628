"""``/v1/mcp-servers``: register, read, change, remove; the allow-list; headers write-only and
sealed at rest; tenancy; agents naming the servers they may use; the live tool listing."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import select

from agentstream.mcp_servers.toolsets import host_allowed, needs_approval
from agentstream.models import McpServer
from agentstream.state import AppState
from tests.factories import Account, add_member, create_agent, register
from tests.fakes.mcp_server import refused_url
from tests.mcp_servers.conftest import register_server

SECRET = "Bearer s3cret-token-value"


async def test_register_read_list_change_and_remove(
    client: httpx.AsyncClient, owner: Account
) -> None:
    created = await register_server(
        client,
        owner,
        "tools",
        "http://127.0.0.1:9/mcp",
        headers={"Authorization": SECRET},
        approval=["delete_all"],
    )
    assert set(created) == {"name", "url", "approval", "has_headers", "created_at"}
    assert created["has_headers"] is True
    assert created["approval"] == ["delete_all"]
    assert SECRET not in str(created)

    one = await client.get("/v1/mcp-servers/tools", headers=owner.headers)
    assert one.json() == created
    await register_server(client, owner, "second", "https://api.example.com/mcp")
    listed = (await client.get("/v1/mcp-servers?limit=1", headers=owner.headers)).json()
    assert [s["name"] for s in listed["items"]] == ["second"]  # newest first
    assert listed["has_more"] is True
    rest = await client.get(f"/v1/mcp-servers?cursor={listed['cursor']}", headers=owner.headers)
    assert [s["name"] for s in rest.json()["items"]] == ["tools"]

    patched = await client.patch(
        "/v1/mcp-servers/tools", json={"approval": "always"}, headers=owner.headers
    )
    assert patched.status_code == 200, patched.text
    assert (patched.json()["approval"], patched.json()["has_headers"]) == ("always", True)
    cleared = await client.patch(
        "/v1/mcp-servers/tools", json={"headers": {}}, headers=owner.headers
    )
    assert cleared.json()["has_headers"] is False

    deleted = await client.delete("/v1/mcp-servers/tools", headers=owner.headers)
    assert deleted.status_code == 204
    gone = await client.get("/v1/mcp-servers/tools", headers=owner.headers)
    assert (gone.status_code, gone.json()["error"]) == (404, "mcp_server_not_found")


async def test_names_are_checked_and_unique_per_team(
    client: httpx.AsyncClient, owner: Account
) -> None:
    for bad in ("Upper", "has space", "x" * 33, ""):
        response = await client.post(
            "/v1/mcp-servers",
            json={"name": bad, "url": "http://127.0.0.1/mcp"},
            headers=owner.headers,
        )
        assert (response.status_code, response.json()["error"]) == (422, "validation_error")
    await register_server(client, owner, "dup_1-a", "http://127.0.0.1/mcp")
    again = await client.post(
        "/v1/mcp-servers",
        json={"name": "dup_1-a", "url": "http://127.0.0.1/mcp"},
        headers=owner.headers,
    )
    assert (again.status_code, again.json()["error"]) == (409, "conflict")
    other = await register(client, "other")
    await register_server(client, other, "dup_1-a", "http://127.0.0.1/mcp")  # another team


@pytest.mark.parametrize(
    "url",
    [
        "http://10.0.0.1/mcp",
        "http://localhost/mcp",
        "http://example.com/mcp",  # ``*.example.com`` is its subdomains only
        "http://evil-example.com/mcp",
        "http://127.0.0.1.nip.io/mcp",
    ],
)
async def test_a_host_outside_the_allow_list_is_refused(
    client: httpx.AsyncClient, owner: Account, url: str
) -> None:
    response = await client.post(
        "/v1/mcp-servers", json={"name": "x", "url": url}, headers=owner.headers
    )
    assert (response.status_code, response.json()["error"]) == (422, "mcp_host_not_allowed")
    await register_server(client, owner, "ok", "http://127.0.0.1:8/mcp")
    moved = await client.patch("/v1/mcp-servers/ok", json={"url": url}, headers=owner.headers)
    assert (moved.status_code, moved.json()["error"]) == (422, "mcp_host_not_allowed")


@pytest.mark.parametrize("settings_overrides", [{}])
async def test_nothing_is_allowed_by_default(client: httpx.AsyncClient, owner: Account) -> None:
    response = await client.post(
        "/v1/mcp-servers",
        json={"name": "x", "url": "http://127.0.0.1/mcp"},
        headers=owner.headers,
    )
    assert (response.status_code, response.json()["error"]) == (422, "mcp_host_not_allowed")


@pytest.mark.parametrize(
    "url",
    [
        "ftp://127.0.0.1/mcp",
        "127.0.0.1/mcp",
        "http://user:pw@127.0.0.1/mcp",
        "http://127.0.0.1:99999/mcp",
        "http://127.0.0.1:0/mcp",
        "http://127.0.0.1:x/mcp",
    ],
)
async def test_urls_must_be_http_with_a_port_and_without_credentials(
    client: httpx.AsyncClient, owner: Account, url: str
) -> None:
    response = await client.post(
        "/v1/mcp-servers", json={"name": "x", "url": url}, headers=owner.headers
    )
    assert (response.status_code, response.json()["error"]) == (422, "validation_error")


def test_host_patterns_and_approval_settings() -> None:
    allowed = ["mcp.internal", "*.example.com"]
    assert host_allowed("https://MCP.internal:8443/x", allowed)
    assert host_allowed("https://a.b.example.com/x", allowed)
    assert not host_allowed("https://example.com/x", allowed)
    assert not host_allowed("https://mcp.internal.evil.com/x", allowed)
    assert not host_allowed("https://x/y", [])
    assert needs_approval("always", "anything")
    assert not needs_approval("never", "anything")
    assert needs_approval(["rm"], "rm")
    assert not needs_approval(["rm"], "ls")


async def test_headers_are_sealed_at_rest(
    client: httpx.AsyncClient, owner: Account, state: AppState
) -> None:
    await register_server(
        client, owner, "sealed", "http://127.0.0.1/mcp", headers={"Authorization": SECRET}
    )
    async with state.sessions() as session:
        row = await session.scalar(select(McpServer).where(McpServer.name == "sealed"))
    assert row is not None
    assert row.headers_encrypted is not None
    assert "s3cret" not in row.headers_encrypted
    assert "Authorization" not in row.headers_encrypted


async def test_moving_a_server_elsewhere_drops_its_headers(
    client: httpx.AsyncClient, owner: Account
) -> None:
    """Headers were written for one origin: an admin who never saw them cannot send them to
    another host or port by changing the URL."""
    await register_server(
        client, owner, "prod", "http://127.0.0.1:8100/mcp", headers={"Authorization": SECRET}
    )

    async def patch(body: dict[str, object]) -> bool:
        response = await client.patch("/v1/mcp-servers/prod", json=body, headers=owner.headers)
        assert response.status_code == 200, response.text
        has_headers: bool = response.json()["has_headers"]
        return has_headers

    assert await patch({"url": "http://127.0.0.1:8100/other-path"})  # same origin: kept
    assert not await patch({"url": "http://127.0.0.1:8101/mcp"})  # another port: dropped
    assert await patch({"url": "http://127.0.0.1:8100/mcp", "headers": {"X-Key": "k"}})
    assert await patch({"url": "https://mcp.example.com/mcp", "headers": {"X-Key": "k"}})
    assert not await patch({"url": "http://mcp.example.com/mcp"})  # another scheme: dropped


async def test_only_admins_manage_servers(client: httpx.AsyncClient, owner: Account) -> None:
    await register_server(client, owner, "team", "http://127.0.0.1/mcp")
    member = await register(client, "member")
    await add_member(client, owner, member, "member")
    headers = member.in_team(owner.team_id)
    for method, path in [
        ("GET", "/v1/mcp-servers"),
        ("GET", "/v1/mcp-servers/team"),
        ("GET", "/v1/mcp-servers/team/tools"),
        ("DELETE", "/v1/mcp-servers/team"),
    ]:
        response = await client.request(method, path, headers=headers)
        assert (response.status_code, response.json()["error"]) == (403, "forbidden")
    created = await client.post(
        "/v1/mcp-servers", json={"name": "m", "url": "http://127.0.0.1/mcp"}, headers=headers
    )
    assert created.status_code == 403


async def test_another_team_cannot_read_list_change_or_use_a_server(
    client: httpx.AsyncClient, owner: Account
) -> None:
    await register_server(client, owner, "private", "http://127.0.0.1/mcp")
    other = await register(client, "other")
    for method, path in [
        ("GET", "/v1/mcp-servers/private"),
        ("GET", "/v1/mcp-servers/private/tools"),
        ("PATCH", "/v1/mcp-servers/private"),
        ("DELETE", "/v1/mcp-servers/private"),
    ]:
        kwargs = {"json": {"approval": "always"}} if method == "PATCH" else {}
        response = await client.request(method, path, headers=other.headers, **kwargs)
        assert (response.status_code, response.json()["error"]) == (404, "mcp_server_not_found")
    listed = await client.get("/v1/mcp-servers", headers=other.headers)
    assert listed.json()["items"] == []
    agent = await client.post(
        "/v1/agents",
        json={"slug": "thief", "name": "T", "model": "demo", "mcp_servers": ["private"]},
        headers=other.headers,
    )
    assert (agent.status_code, agent.json()["error"]) == (422, "validation_error")


async def test_agents_name_servers_of_their_team(client: httpx.AsyncClient, owner: Account) -> None:
    unknown = await client.post(
        "/v1/agents",
        json={"slug": "a", "name": "A", "model": "demo", "mcp_servers": ["nope"]},
        headers=owner.headers,
    )
    assert (unknown.status_code, unknown.json()["error"]) == (422, "validation_error")
    assert unknown.json()["details"]["unknown_mcp_servers"] == ["nope"]
    await register_server(client, owner, "one", "http://127.0.0.1/mcp")
    await register_server(client, owner, "two", "http://127.0.0.1/mcp")
    agent = await create_agent(client, owner, "a", mcp_servers=["one"])
    assert agent["mcp_servers"] == ["one"]
    assert (await create_agent(client, owner, "b"))["mcp_servers"] == []
    patched = await client.patch(
        "/v1/agents/a", json={"mcp_servers": ["two", "one"]}, headers=owner.headers
    )
    assert patched.json()["mcp_servers"] == ["two", "one"]
    bad = await client.patch("/v1/agents/a", json={"mcp_servers": ["x"]}, headers=owner.headers)
    assert bad.status_code == 422
    await client.delete("/v1/mcp-servers/two", headers=owner.headers)
    after = await client.get("/v1/agents/a", headers=owner.headers)
    assert after.json()["mcp_servers"] == ["one"]  # a removed server leaves its agents


async def test_tools_are_listed_live(
    client: httpx.AsyncClient, owner: Account, mcp_url: str
) -> None:
    await register_server(client, owner, "live", mcp_url, approval=["fail"])
    response = await client.get("/v1/mcp-servers/live/tools", headers=owner.headers)
    assert response.status_code == 200, response.text
    tools = {t["name"]: t for t in response.json()["items"]}
    assert set(tools) == {"echo", "slow", "fail", "large"}
    assert tools["echo"]["prefixed_name"] == "live__echo"
    assert tools["echo"]["input_schema"]["properties"]["text"]["type"] == "string"
    assert tools["echo"]["description"] == "Say the text back."
    assert [n for n, t in tools.items() if t["needs_approval"]] == ["fail"]


async def test_an_unreachable_server_lists_as_502(
    client: httpx.AsyncClient, owner: Account
) -> None:
    with refused_url() as url:
        await register_server(client, owner, "down", url)
        response = await client.get("/v1/mcp-servers/down/tools", headers=owner.headers)
    assert (response.status_code, response.json()["error"]) == (502, "mcp_unavailable")
    missing = await client.get("/v1/mcp-servers/nope/tools", headers=owner.headers)
    assert (missing.status_code, missing.json()["error"]) == (404, "mcp_server_not_found")
