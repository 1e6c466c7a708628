"""``/v1/memories``: explicit memories of the caller (and shared ones of the team)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, status

from agentstream.auth.deps import MemberPrincipal, ViewerPrincipal
from agentstream.kit.pagination import Page, PageDep
from agentstream.memory import service
from agentstream.memory.schemas import MemoryCreate, MemoryPublic
from agentstream.state import SessionDep

router = APIRouter(prefix="/v1/memories", tags=["memories"])


@router.get("", response_model=Page[MemoryPublic])
async def list_memories(
    principal: ViewerPrincipal,
    session: SessionDep,
    page: PageDep,
    q: Annotated[str | None, Query(max_length=1000)] = None,
    agent: Annotated[str | None, Query(max_length=64)] = None,
) -> Page[MemoryPublic]:
    """Visible memories; ``q`` ranks by relevance, ``agent`` narrows to one agent's view."""
    rows, cursor, has_more = await service.list_memories(
        session, principal, page, query=q, agent_slug=agent
    )
    items = await service.to_public(session, principal, rows)
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
