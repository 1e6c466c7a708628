"""The hot-row caches: a committed change is seen by the next request, here and on other workers."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from redis.asyncio import Redis
from sqlalchemy import update

from agentstream.app import build_state, create_app
from agentstream.kit.cache import ALL_TEAMS, Caches, TeamCache
from agentstream.kit.redis import RedisGuard
from agentstream.models import Membership, Role
from agentstream.state import AppState
from tests.conftest import _truncate, make_settings
from tests.factories import Account, add_member, create_agent, register

TEAM = uuid.uuid4()


def test_a_value_read_before_an_invalidation_is_not_cached() -> None:
    cache: TeamCache[str, int] = TeamCache(ttl_s=60)
    ticket = cache.ticket(TEAM)
    cache.invalidate(TEAM)  # a commit landed while the reader was reading
    cache.put(TEAM, "k", 1, ticket)
    assert cache.get(TEAM, "k") is None
    cache.put(TEAM, "k", 2, cache.ticket(TEAM))
    assert cache.get(TEAM, "k") == 2


def test_invalidating_one_team_keeps_the_others() -> None:
    cache: TeamCache[str, int] = TeamCache(ttl_s=60)
    other = uuid.uuid4()
    cache.put(TEAM, "k", 1, cache.ticket(TEAM))
    cache.put(other, "k", 2, cache.ticket(other))
    cache.invalidate(TEAM)
    assert (cache.get(TEAM, "k"), cache.get(other, "k")) == (None, 2)
    cache.invalidate(ALL_TEAMS)
    assert cache.get(other, "k") is None


def test_entries_expire_after_the_ttl() -> None:
    now = [0.0]
    cache: TeamCache[str, int] = TeamCache(ttl_s=10, clock=lambda: now[0])
    cache.put(TEAM, "k", 1, cache.ticket(TEAM))
    now[0] = 11.0
    assert cache.get(TEAM, "k") is None


async def test_with_redis_nothing_is_cached_until_the_invalidations_are_heard() -> None:
    caches = Caches(ttl_s=60, guard=RedisGuard(Redis.from_url("redis://127.0.0.1:1")))
    caches.agents.put(TEAM, "k", "agent", caches.agents.ticket(TEAM))
    assert caches.agents.get(TEAM, "k") is None


async def _chat(client: httpx.AsyncClient, headers: dict[str, str], slug: str) -> httpx.Response:
    return await client.post(
        f"/v1/agents/{slug}/chat/stream/advanced", json={"message": "hello"}, headers=headers
    )


def _memory_count(response: httpx.Response) -> int:
    for line in response.text.splitlines():
        if line.startswith("data: "):
            event = json.loads(line[6:])
            if event["type"] == "memory_context":
                return int(event["memory_count"])
    raise AssertionError(f"no memory_context event in {response.text!r}")


async def _member_who_chatted(
    client: httpx.AsyncClient,
) -> tuple[Account, Account, dict[str, str]]:
    """An owner, a member of the owner's team who has chatted (so is cached), and the
    member's headers in that team."""
    owner, member = await register(client), await register(client)
    await add_member(client, owner, member, "member")
    await create_agent(client, owner, "helper")
    headers = member.in_team(owner.team_id)
    assert (await _chat(client, headers, "helper")).status_code == 200
    return owner, member, headers


async def test_a_removed_member_is_refused_on_the_next_request(
    client: httpx.AsyncClient, state: AppState
) -> None:
    owner, member, headers = await _member_who_chatted(client)
    assert state.caches.principals.get(owner.team_id, member.user_id) is not None
    removed = await client.delete(
        f"/v1/teams/{owner.team_id}/members/{member.user_id}", headers=owner.headers
    )
    assert removed.status_code == 204
    assert (await _chat(client, headers, "helper")).status_code == 403
    assert (await client.get("/v1/agents", headers=headers)).status_code == 403


async def test_a_role_changed_in_the_database_is_seen_on_the_next_request(
    client: httpx.AsyncClient, state: AppState
) -> None:
    owner, member, headers = await _member_who_chatted(client)
    async with state.sessions() as session, session.begin():
        await session.execute(
            update(Membership)
            .where(Membership.user_id == member.user_id, Membership.team_id == owner.team_id)
            .values(role=Role.viewer)
        )
    assert (await _chat(client, headers, "helper")).status_code == 403  # viewers cannot chat


async def test_an_archived_or_changed_agent_is_seen_on_the_next_chat(
    client: httpx.AsyncClient, state: AppState
) -> None:
    owner = await register(client)
    await create_agent(client, owner, "helper")
    assert (await _chat(client, owner.headers, "helper")).status_code == 200
    assert state.caches.agents.get(owner.team_id, "helper") is not None
    patched = await client.patch(
        "/v1/agents/helper", json={"instructions": "Be brief."}, headers=owner.headers
    )
    assert patched.status_code == 200
    cached = state.caches.agents.get(owner.team_id, "helper")
    assert cached is None
    assert (await _chat(client, owner.headers, "helper")).status_code == 200
    refreshed = state.caches.agents.get(owner.team_id, "helper")
    assert refreshed is not None
    assert refreshed.instructions == "Be brief."
    assert (await client.delete("/v1/agents/helper", headers=owner.headers)).status_code == 204
    refused = await _chat(client, owner.headers, "helper")
    assert refused.status_code == 409, refused.text


async def test_the_first_memory_is_used_by_the_next_chat(client: httpx.AsyncClient) -> None:
    owner = await register(client)
    await create_agent(client, owner, "helper")
    assert _memory_count(await _chat(client, owner.headers, "helper")) == 0
    created = await client.post(
        "/v1/memories",
        json={"content": "Says hello a lot", "importance": 5},
        headers=owner.headers,
    )
    assert created.status_code == 201, created.text
    assert _memory_count(await _chat(client, owner.headers, "helper")) == 1


@dataclass
class Worker:
    state: AppState
    client: httpx.AsyncClient


@pytest.fixture
async def two_workers(
    database_url: str, tmp_path: Path, redis_url: str
) -> AsyncIterator[tuple[Worker, Worker]]:
    """Two app instances over one database and one Redis, as two worker processes are."""
    workers: list[Worker] = []
    async with AsyncExitStack() as stack:
        for name in ("a", "b"):
            settings = make_settings(database_url, tmp_path / name, redis_url=redis_url)
            state = await stack.enter_async_context(build_state(settings))
            app = create_app(settings)
            app.state.agentstream = state
            client = await stack.enter_async_context(
                httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")
            )
            workers.append(Worker(state, client))
        for worker in workers:
            await _until(lambda w=worker: w.state.caches.principals.enabled)  # type: ignore[misc]
        try:
            yield workers[0], workers[1]
        finally:
            for worker in workers:
                await worker.state.extractor.drain()
            await _truncate(workers[0].state)


async def _until(condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    """Wait for another worker's message to arrive (polling a condition, not a fixed sleep)."""
    async with asyncio.timeout(timeout_s):
        while not condition():  # noqa: ASYNC110 - the condition is another process's message
            await asyncio.sleep(0.005)


async def test_a_membership_removed_on_one_worker_is_seen_by_the_other(
    two_workers: tuple[Worker, Worker],
) -> None:
    a, b = two_workers
    owner, member = await register(a.client), await register(a.client)
    await add_member(a.client, owner, member, "member")
    await create_agent(a.client, owner, "helper")
    headers = member.in_team(owner.team_id)
    assert (await _chat(b.client, headers, "helper")).status_code == 200
    assert b.state.caches.principals.get(owner.team_id, member.user_id) is not None
    assert b.state.caches.agents.get(owner.team_id, "helper") is not None
    removed = await a.client.delete(
        f"/v1/teams/{owner.team_id}/members/{member.user_id}", headers=owner.headers
    )
    assert removed.status_code == 204
    await _until(lambda: b.state.caches.principals.get(owner.team_id, member.user_id) is None)
    assert (await _chat(b.client, headers, "helper")).status_code == 403
    assert (await a.client.delete("/v1/agents/helper", headers=owner.headers)).status_code == 204
    await _until(lambda: b.state.caches.agents.get(owner.team_id, "helper") is None)
    assert (await _chat(b.client, owner.headers, "helper")).status_code == 409
