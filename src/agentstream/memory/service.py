"""Memories: explicit CRUD and hybrid retrieval (words and meaning, importance, recency).

Visibility is ``tenancy.memory_visibility``: same team, not deleted, the caller's own or
shared (``user_id`` NULL), and for an agent: unscoped (``agent_id`` NULL) or that agent's.
Both searches run over those rows only. Retrieval returns only memories that match words of
the message or are close to it in meaning: unrelated memories never pad the prompt.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import exists, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from agentstream import tenancy
from agentstream.agents.service import get_by_slug
from agentstream.auth.service import Principal
from agentstream.kit.cache import Caches
from agentstream.kit.errors import NotFound
from agentstream.kit.pagination import PageParams, paginate
from agentstream.memory.embedder import QueryVector
from agentstream.memory.ranking import Hit, fuse
from agentstream.memory.schemas import MemoryCreate, MemoryPublic
from agentstream.memory.search import text_matches
from agentstream.memory.vectors import Backend, vector_matches
from agentstream.models import Agent, Memory, Role, utcnow
from agentstream.tenancy import Caller

CANDIDATES = 50


@dataclass(frozen=True)
class VectorSearch:
    """The meaning half of a search: the query's vector and how to compare it."""

    backend: Backend
    query: QueryVector
    scan: int
    min_similarity: float


async def search(
    session: AsyncSession,
    caller: Caller,
    agent_id: uuid.UUID | None,
    query: str,
    limit: int,
    vector: VectorSearch | None = None,
) -> list[Hit]:
    """Word matches and (with ``vector``) meaning matches, fused and re-ranked."""
    visible = tenancy.memory_visibility(caller, agent_id)
    text = await text_matches(session, caller, visible, query, CANDIDATES)
    meaning: list[tuple[Memory, float]] = []
    if vector is not None:
        meaning = await vector_matches(
            session,
            vector.backend,
            visible,
            vector.query,
            limit=CANDIDATES,
            scan=vector.scan,
            min_similarity=vector.min_similarity,
        )
    return fuse(text, meaning, limit)


async def may_have_memories(session: AsyncSession, caller: Caller, caches: Caches) -> bool:
    """Whether the caller can see any memory at all: cached per team (and forgotten when any
    worker commits a change to the team's memories), so a memoryless chat skips the search."""
    cached = caches.memories.get(caller.team_id, caller.user_id)
    if cached is not None:
        return cached
    ticket = caches.memories.ticket(caller.team_id, caller.user_id)
    found = await session.scalar(select(exists().where(tenancy.memory_visibility(caller))))
    caches.memories.put(caller.team_id, caller.user_id, bool(found), ticket)
    return bool(found)


async def retrieve(
    session: AsyncSession,
    caller: Caller,
    agent_id: uuid.UUID,
    query: str,
    limit: int,
    caches: Caches | None = None,
    vector: VectorSearch | None = None,
) -> list[Memory]:
    """Memories relevant to ``query`` that the caller's chat with this agent may use; marks
    them used. With ``caches``, a caller who has no memories costs no search."""
    if caches is not None and not await may_have_memories(session, caller, caches):
        return []
    memories = [hit.memory for hit in await search(session, caller, agent_id, query, limit, vector)]
    if memories:
        await session.execute(
            update(Memory)
            .where(Memory.id.in_([m.id for m in memories]))
            .values(last_used_at=utcnow())
            .execution_options(synchronize_session=False)
        )
    return memories


async def to_public(
    session: AsyncSession,
    caller: Caller,
    memories: Sequence[Memory],
    hits: Sequence[Hit] | None = None,
) -> list[MemoryPublic]:
    """Render memories with their agent's slug (and, for search hits, score and match)."""
    found = {hit.memory.id: hit for hit in hits or ()}
    agent_ids = {m.agent_id for m in memories if m.agent_id}
    slugs: dict[uuid.UUID, str] = {}
    if agent_ids:
        rows = await session.execute(
            tenancy.agents(caller)
            .where(Agent.id.in_(agent_ids))
            .with_only_columns(Agent.id, Agent.slug)
        )
        slugs = {row.id: row.slug for row in rows}
    return [
        MemoryPublic(
            id=m.id,
            content=m.content,
            importance=m.importance,
            agent=slugs.get(m.agent_id) if m.agent_id else None,
            shared=m.user_id is None,
            created_at=m.created_at,
            last_used_at=m.last_used_at,
            score=found[m.id].score if m.id in found else None,
            matched=list(found[m.id].matched) if m.id in found else None,
        )
        for m in memories
    ]


async def create(session: AsyncSession, principal: Principal, body: MemoryCreate) -> Memory:
    """A private memory of the caller, or (admins) a team-wide one; optionally for one agent."""
    principal.require(Role.admin if body.shared else Role.member)
    agent = await get_by_slug(session, principal, body.agent) if body.agent else None
    memory = Memory(
        id=uuid.uuid4(),
        team_id=principal.team_id,
        agent_id=agent.id if agent else None,
        user_id=None if body.shared else principal.user.id,
        content=body.content,
        importance=body.importance,
    )
    session.add(memory)
    await session.flush()
    return memory


async def list_memories(
    session: AsyncSession,
    principal: Principal,
    params: PageParams,
    *,
    query: str | None,
    agent_slug: str | None,
    vector: VectorSearch | None = None,
) -> tuple[list[MemoryPublic], str | None, bool]:
    """The caller's visible memories: newest first (a page), or ranked when ``q`` is given
    (one list of hits, each with its ``score`` and ``matched``)."""
    agent_id = (await get_by_slug(session, principal, agent_slug)).id if agent_slug else None
    if query:
        hits = await search(session, principal, agent_id, query, params.limit, vector)
        return await to_public(session, principal, [h.memory for h in hits], hits), None, False
    stmt = tenancy.memories(principal, agent_id)
    rows, cursor, has_more = await paginate(session, stmt, Memory, params)
    return await to_public(session, principal, list(rows)), cursor, has_more


async def delete(session: AsyncSession, principal: Principal, memory_id: uuid.UUID) -> None:
    """Soft-delete a visible memory (shared ones need an admin)."""
    memory = await session.scalar(tenancy.memories(principal).where(Memory.id == memory_id))
    if memory is None:
        raise NotFound("memory")
    principal.require(Role.admin if memory.user_id is None else Role.member)
    memory.deleted_at = utcnow()
