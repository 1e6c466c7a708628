"""The hot-row caches: a committed change is seen by the next request, here and on other workers."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
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
from agentstream.kit.cache import ALL_TEAMS, LEASE_S, Caches, TeamCache
from agentstream.kit.redis import RedisGuard
from agentstream.models import Membership, Role, User
from agentstream.state import AppState
from tests.conftest import _truncate, make_settings, redis_via
from tests.factories import Account, add_member, create_agent, register
from tests.fakes.tcpproxy import TcpProxy

TEAM = uuid.uuid4()


def test_a_value_read_before_an_invalidation_is_not_cached() -> None:
    cache: TeamCache[str, int] = TeamCache(ttl_s=60)
    ticket = cache.ticket(TEAM, "k")
    cache.invalidate(TEAM)  # a commit landed while the reader was reading
    cache.put(TEAM, "k", 1, ticket)
    assert cache.get(TEAM, "k") is None
    cache.put(TEAM, "k", 2, cache.ticket(TEAM, "k"))
    assert cache.get(TEAM, "k") == 2
    ticket = cache.ticket(TEAM, "k")
    cache.invalidate_key("k")  # or a commit changed that key in every team
    cache.put(TEAM, "k", 3, ticket)
    assert cache.get(TEAM, "k") is None


def test_invalidating_a_key_forgets_it_in_every_team_and_nothing_else() -> None:
    cache: TeamCache[str, int] = TeamCache(ttl_s=60)
    other = uuid.uuid4()
    for team in (TEAM, other):
        for key in ("alice", "bob"):
            cache.put(team, key, 1, cache.ticket(team, key))
    cache.invalidate_key("alice")
    assert [cache.get(t, "alice") for t in (TEAM, other)] == [None, None]
    assert [cache.get(t, "bob") for t in (TEAM, other)] == [1, 1]


def test_invalidating_one_team_keeps_the_others() -> None:
    cache: TeamCache[str, int] = TeamCache(ttl_s=60)
    other = uuid.uuid4()
    cache.put(TEAM, "k", 1, cache.ticket(TEAM, "k"))
    cache.put(other, "k", 2, cache.ticket(other, "k"))
    cache.invalidate(TEAM)
    assert (cache.get(TEAM, "k"), cache.get(other, "k")) == (None, 2)
    cache.invalidate(ALL_TEAMS)
    assert cache.get(other, "k") is None


def test_entries_expire_after_the_ttl() -> None:
    now = [0.0]
    cache: TeamCache[str, int] = TeamCache(ttl_s=10, clock=lambda: now[0])
    cache.put(TEAM, "k", 1, cache.ticket(TEAM, "k"))
    now[0] = 11.0
    assert cache.get(TEAM, "k") is None


async def test_with_redis_nothing_is_cached_until_the_invalidations_are_heard() -> None:
    caches = Caches(ttl_s=60, guard=RedisGuard(Redis.from_url("redis://127.0.0.1:1")))
    caches.agents.put(TEAM, "k", "agent", caches.agents.ticket(TEAM, "k"))
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


async def test_a_new_or_changed_user_forgets_only_that_users_entries(
    client: httpx.AsyncClient, state: AppState
) -> None:
    owner, member, _ = await _member_who_chatted(client)
    cached = state.caches.principals
    assert cached.get(owner.team_id, member.user_id) is not None
    newcomer = await register(client)  # a user insert (and their own team's membership)
    assert cached.get(owner.team_id, member.user_id) is not None
    async with state.sessions() as session, session.begin():
        await session.execute(
            update(User).where(User.id == newcomer.user_id).values(display_name="x")
        )
    assert cached.get(owner.team_id, member.user_id) is None  # a bulk update names no user
    assert (await _chat(client, member.in_team(owner.team_id), "helper")).status_code == 200
    async with state.sessions() as session, session.begin():
        user = await session.get(User, newcomer.user_id)
        assert user is not None
        user.display_name = "Newcomer"  # one user's row, through the ORM
    assert cached.get(owner.team_id, member.user_id) is not None
    async with state.sessions() as session, session.begin():
        user = await session.get(User, member.user_id)
        assert user is not None
        user.is_active = False
    assert cached.get(owner.team_id, member.user_id) is None
    assert (await _chat(client, member.in_team(owner.team_id), "helper")).status_code == 401


@dataclass
class Worker:
    state: AppState
    client: httpx.AsyncClient


MakeWorkers = Callable[..., "contextlib.AbstractAsyncContextManager[tuple[Worker, Worker]]"]


@pytest.fixture
def workers(database_url: str, tmp_path: Path) -> MakeWorkers:
    """Two app instances over one database and one Redis (at ``redis_url``), as two worker
    processes are; the context waits until both trust their caches."""

    @contextlib.asynccontextmanager
    async def start(redis_url: str) -> AsyncIterator[tuple[Worker, Worker]]:
        started: list[Worker] = []
        async with AsyncExitStack() as stack:
            for name in ("a", "b"):
                settings = make_settings(database_url, tmp_path / name, redis_url=redis_url)
                state = await stack.enter_async_context(build_state(settings))
                app = create_app(settings)
                app.state.agentstream = state
                client = await stack.enter_async_context(
                    httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")
                )
                started.append(Worker(state, client))
            for worker in started:
                await _until(worker.state.caches.trusted)
            try:
                yield started[0], started[1]
            finally:
                for worker in started:
                    await worker.state.extractor.drain()
                await _truncate(started[0].state)

    return start


async def _until(condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    """Wait for another worker's message to arrive (polling a condition, not a fixed sleep)."""
    async with asyncio.timeout(timeout_s):
        while not condition():  # noqa: ASYNC110 - the condition is another process's message
            await asyncio.sleep(0.005)


async def _cached_member(a: Worker, b: Worker) -> tuple[Account, Account, dict[str, str]]:
    """An owner (acting on ``a``) and a member whose principal and agent ``b`` has cached."""
    owner, member = await register(a.client), await register(a.client)
    await add_member(a.client, owner, member, "member")
    await create_agent(a.client, owner, "helper")
    headers = member.in_team(owner.team_id)

    def cached() -> bool:
        caches = b.state.caches
        return (
            caches.principals.get(owner.team_id, member.user_id) is not None
            and caches.agents.get(owner.team_id, "helper") is not None
        )

    # Whatever empties b's caches meanwhile is correct behaviour, not the subject here: a late
    # invalidation of the setup above, or a loop stalled past the lease (a full garbage
    # collection late in a whole test run) that lapses the subscription's trust. So the fill
    # is a chat repeated until it sticks; one that never fills fails all of them.
    for _ in range(10):
        assert (await _chat(b.client, headers, "helper")).status_code == 200
        if cached():
            return owner, member, headers
    pytest.fail("b never cached the member's principal and the agent")


async def test_an_access_change_on_one_worker_reaches_the_other_within_a_second(
    workers: MakeWorkers, redis_url: str
) -> None:
    async with workers(redis_url) as (a, b):
        owner, member, headers = await _cached_member(a, b)
        removed = await a.client.delete(
            f"/v1/teams/{owner.team_id}/members/{member.user_id}", headers=owner.headers
        )
        assert removed.status_code == 204
        assert (await _chat(a.client, headers, "helper")).status_code == 403  # here: at once
        await _until(
            lambda: b.state.caches.principals.get(owner.team_id, member.user_id) is None,
            timeout_s=LEASE_S,
        )
        assert (await _chat(b.client, headers, "helper")).status_code == 403
        paused = await a.client.patch(
            "/v1/agents/helper", json={"status": "paused"}, headers=owner.headers
        )
        assert paused.status_code == 200
        await _until(lambda: b.state.caches.agents.get(owner.team_id, "helper") is None, LEASE_S)
        assert (await _chat(b.client, owner.headers, "helper")).status_code == 409


async def test_an_open_circuit_breaker_does_not_hold_an_invalidation_back(
    workers: MakeWorkers, redis_url: str
) -> None:
    async with workers(redis_url) as (a, b):
        owner, member, headers = await _cached_member(a, b)
        guard = a.state.redis_guard
        assert guard is not None
        # Some other Redis call of worker a failed a moment ago: the breaker skips Redis for
        # its cooldown (5 s), but Redis is back and the others must hear of the change.
        guard._trip(ConnectionError("a passing fault"))
        assert not guard.available
        removed = await a.client.delete(
            f"/v1/teams/{owner.team_id}/members/{member.user_id}", headers=owner.headers
        )
        assert removed.status_code == 204
        await _until(
            lambda: b.state.caches.principals.get(owner.team_id, member.user_id) is None,
            timeout_s=LEASE_S,
        )
        assert (await _chat(b.client, headers, "helper")).status_code == 403


async def test_a_lost_invalidation_is_never_trusted_redis_cut(
    workers: MakeWorkers, redis_proxy: TcpProxy
) -> None:
    async with workers(redis_via(redis_proxy)) as (a, b):
        owner, member, headers = await _cached_member(a, b)
        redis_proxy.kill()  # Redis is gone for both workers: the publish below is lost
        removed = await a.client.delete(
            f"/v1/teams/{owner.team_id}/members/{member.user_id}", headers=owner.headers
        )
        assert removed.status_code == 204
        await _until(lambda: not b.state.caches.trusted(), timeout_s=LEASE_S)
        assert (await _chat(b.client, headers, "helper")).status_code == 403  # from the database
        redis_proxy.restore()
        await _until(b.state.caches.trusted)  # subscribed again: trusted, and emptied first
        assert b.state.caches.principals.get(owner.team_id, member.user_id) is None
        assert (await _chat(b.client, headers, "helper")).status_code == 403


async def test_a_silent_subscription_is_trusted_for_at_most_a_second(
    workers: MakeWorkers, redis_proxy: TcpProxy
) -> None:
    async with workers(redis_via(redis_proxy)) as (a, b):
        owner, member, headers = await _cached_member(a, b)
        redis_proxy.freeze()  # Redis hangs: no error, just silence
        frozen_at = time.monotonic()
        removed = await a.client.delete(
            f"/v1/teams/{owner.team_id}/members/{member.user_id}", headers=owner.headers
        )
        assert removed.status_code == 204
        await _until(lambda: not b.state.caches.trusted(), timeout_s=3 * LEASE_S)
        # Nothing from Redis has reached b since the freeze, so its last word is older and
        # its caches stopped being trusted at most LEASE_S after it.
        assert b.state.caches._trusted_until <= frozen_at + LEASE_S
        assert (await _chat(b.client, headers, "helper")).status_code == 403
        redis_proxy.thaw()
        await _until(b.state.caches.trusted)
        assert (await _chat(b.client, headers, "helper")).status_code == 403


async def test_a_commit_during_a_publish_is_published_again(redis_url: str) -> None:
    redis = Redis.from_url(redis_url)
    caches = Caches(ttl_s=60, guard=RedisGuard(redis))
    sent: list[str] = []
    first_sent, release = asyncio.Event(), asyncio.Event()
    publish = redis.publish

    async def held_publish(channel: str, message: str) -> int:
        sent.append(message)
        first_sent.set()
        await release.wait()  # the first publish is on its way while the next commit lands
        return await publish(channel, message)

    redis.publish = held_publish  # type: ignore[method-assign]
    try:
        caches.committed({f"principals:{TEAM}"})
        await asyncio.wait_for(first_sent.wait(), 5)
        caches.committed({f"principals:{TEAM}"})  # after the message above was sent
        release.set()
        await _until(lambda: len(sent) == 2)
        assert sent == [f"principals:{TEAM}"] * 2
    finally:
        await caches.aclose()
        await redis.aclose()
