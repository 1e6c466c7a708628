"""Word search ranks only the caller's own readable memories, found through an index."""

from __future__ import annotations

import uuid

import httpx
from sqlalchemy import insert, select, text, true

from agentstream import tenancy
from agentstream.memory.search import fts_match, postgres_statement, text_matches
from agentstream.models import Memory
from agentstream.state import AppState
from tests.factories import Account, add_member, register

OTHERS = 400


async def _seed(client: httpx.AsyncClient, state: AppState) -> tuple[Account, set[str]]:
    """The caller's own, shared and a colleague's memories about cats, and many other
    teams' memories about cats; returns the caller and the contents they may read."""
    owner = await register(client)
    colleague = await register(client)
    stranger = await register(client)
    await add_member(client, owner, colleague, "member")
    rows = [
        {"team_id": owner.team_id, "user_id": owner.user_id, "content": "My cat is Tom"},
        {"team_id": owner.team_id, "user_id": None, "content": "The office cat is Misty"},
        {"team_id": owner.team_id, "user_id": colleague.user_id, "content": "Their cat is Rex"},
    ] + [
        {"team_id": stranger.team_id, "user_id": stranger.user_id, "content": f"cat number {i}"}
        for i in range(OTHERS)
    ]
    async with state.sessions() as session:
        await session.execute(
            insert(Memory), [{"id": uuid.uuid4(), "importance": 5, **row} for row in rows]
        )
        await session.commit()
    return owner, {"My cat is Tom", "The office cat is Misty"}


async def test_word_search_finds_only_the_callers_readable_memories(
    client: httpx.AsyncClient, state: AppState
) -> None:
    owner, readable = await _seed(client, state)
    found = (await client.get("/v1/memories?q=cat", headers=owner.headers)).json()["items"]
    assert {m["content"] for m in found} == readable


async def test_the_index_itself_yields_only_the_callers_rows(
    client: httpx.AsyncClient, state: AppState
) -> None:
    """No filter after the search: what the index returns is already the caller's own."""
    owner, readable = await _seed(client, state)
    async with state.sessions() as session:
        if session.get_bind().dialect.name == "sqlite":
            ids = await session.scalars(
                text("SELECT memory_id FROM memories_fts WHERE memories_fts MATCH :m"),
                {"m": fts_match(owner, ["cat"])},
            )
            contents = await session.scalars(
                select(Memory.content).where(Memory.id.in_([uuid.UUID(i) for i in ids]))
            )
            assert set(contents) == readable
            # And the search with no visibility filter at all still returns only them.
            matches = await text_matches(session, owner, true(), "cat", 50)
            assert {m.content for m, _ in matches} == readable
        else:
            await session.execute(text("ANALYZE memories"))
            stmt = postgres_statement(tenancy.memory_visibility(owner), ["cat"], 50)
            compiled = stmt.compile(dialect=session.get_bind().dialect)
            params = [compiled.params[name] for name in compiled.positiontup or []]
            raw = (await (await session.connection()).get_raw_connection()).driver_connection
            assert raw is not None
            plan = "\n".join(r[0] for r in await raw.fetch(f"EXPLAIN {compiled}", *params))
            # The team's rows come from the team index; no other tenant's row is scanned.
            assert "Seq Scan on memories" not in plan, plan
            assert "ix_memories_team_agent_user" in plan, plan
            assert "to_tsvector" not in plan, plan  # the stored tsvector: rows are not re-parsed


async def test_other_tenants_memories_do_not_change_the_callers_ranking(
    client: httpx.AsyncClient, state: AppState
) -> None:
    """A word's weight comes from the caller's own rows: another team storing hundreds of
    memories with one of the query's words leaves every score of the caller as it was."""
    owner, stranger = await register(client), await register(client)
    mine = ["Walks the dog daily", "Feeds the fish daily", "Cleans the fish tank"]
    theirs = [f"dog walker number {i}" for i in range(OTHERS)]

    async def add(account: Account, contents: list[str]) -> None:
        rows = [
            {"id": uuid.uuid4(), "importance": 5, "content": content}
            | {"team_id": account.team_id, "user_id": account.user_id}
            for content in contents
        ]
        async with state.sessions() as session:
            await session.execute(insert(Memory), rows)
            await session.commit()

    async def scores() -> dict[str, float]:
        async with state.sessions() as session:
            visible = tenancy.memory_visibility(owner)
            return {
                m.content: s for m, s in await text_matches(session, owner, visible, "dog fish", 50)
            }

    await add(owner, mine)
    alone = await scores()
    await add(stranger, theirs)
    assert await scores() == alone
    assert set(alone) == set(mine)
    async with state.sessions() as session:
        if session.get_bind().dialect.name == "sqlite":
            # BM25 within the caller's rows: "dog" is the rarer word there, so it weighs more.
            assert max(alone, key=alone.__getitem__) == "Walks the dog daily"
