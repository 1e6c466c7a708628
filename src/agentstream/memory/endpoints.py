"""``/v1/memories``: explicit memories of the caller (and shared ones of the team)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, status

from agentstream.auth.deps import MemberPrincipal, ViewerPrincipal
from agentstream.kit.pagination import Page, PageDep
from agentstream.memory import service
from agentstream.memory.schemas import MemoryCreate, MemoryPublic
from agentstream.state import SessionDep, StateDep

router = APIRouter(prefix="/v1/memories", tags=["memories"])
SearchText = Annotated[str | None, Query(max_length=1000)]


async def search_vector(state: StateDep, q: SearchText = None) -> service.VectorSearch | None:
    """The meaning half of a search, embedded before the request's session starts (no
    transaction is held while the embedding model answers)."""
    return await state.memory.vector_search(q) if q else None


VectorDep = Annotated[service.VectorSearch | None, Depends(search_vector)]


@router.get("", response_model=Page[MemoryPublic])
async def list_memories(
    principal: ViewerPrincipal,
    session: SessionDep,
    page: PageDep,
    vector: VectorDep,
    q: SearchText = None,
    agent: Annotated[str | None, Query(max_length=64)] = None,
) -> Page[MemoryPublic]:
    """Visible memories; ``q`` ranks by words and meaning (each hit with its ``score`` and
    ``matched``), ``agent`` narrows to one agent's view."""
    items, cursor, has_more = await service.list_memories(
        session, principal, page, query=q, agent_slug=agent, vector=vector
    )
    return Page(items=items, cursor=cursor, has_more=has_more)


@router.post("", status_code=status.HTTP_201_CREATED, response_model=MemoryPublic)
async def create_memory(
    body: MemoryCreate, principal: MemberPrincipal, session: SessionDep
) -> MemoryPublic:
    """Remember something (``shared: true`` for the whole team needs an admin)."""
    memory = await service.create(session, principal, body)
    return (await service.to_public(session, principal, [memory]))[0]


@router.delete("/{memory_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_memory(
    memory_id: uuid.UUID, principal: MemberPrincipal, session: SessionDep
) -> None:
    """Forget a memory."""
    await service.delete(session, principal, memory_id)
