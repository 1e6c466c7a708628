"""``/v1/agents`` and ``/v1/skills``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, status

from agentstream.agents import service
from agentstream.agents.schemas import AgentCreate, AgentPublic, AgentUpdate, SkillPublic
from agentstream.auth.deps import AdminPrincipal, ViewerPrincipal
from agentstream.kit.pagination import Page, PageDep
from agentstream.models import Agent
from agentstream.state import SessionDep, StateDep

router = APIRouter(tags=["agents"])


async def valid_agent(slug: str, principal: ViewerPrincipal, session: SessionDep) -> Agent:
    """The caller's team's agent named by the path, or 404."""
    return await service.get_by_slug(session, principal, slug)


AgentDep = Annotated[Agent, Depends(valid_agent)]


@router.post("/v1/agents", status_code=status.HTTP_201_CREATED, response_model=AgentPublic)
async def create_agent(
    body: AgentCreate, principal: AdminPrincipal, session: SessionDep, state: StateDep
) -> AgentPublic:
    """Create an agent (admins)."""
    agent = await service.create(
        session, principal, body, state.skills, state.models, state.settings.default_model
    )
    return service.to_public(agent, state.skills)


@router.get("/v1/agents", response_model=Page[AgentPublic])
async def list_agents(
    principal: ViewerPrincipal,
    session: SessionDep,
    state: StateDep,
    page: PageDep,
    include_archived: bool = False,
) -> Page[AgentPublic]:
    """The team's agents, newest first."""
    rows, cursor, has_more = await service.list_agents(
        session, principal, page, include_archived=include_archived
    )
    items = [service.to_public(a, state.skills) for a in rows]
    return Page(items=items, cursor=cursor, has_more=has_more)


@router.get("/v1/agents/{slug}", response_model=AgentPublic)
async def get_agent(agent: AgentDep, state: StateDep) -> AgentPublic:
    """One agent."""
    return service.to_public(agent, state.skills)


@router.patch("/v1/agents/{slug}", response_model=AgentPublic)
async def update_agent(
    body: AgentUpdate,
    agent: AgentDep,
    principal: AdminPrincipal,
    session: SessionDep,
    state: StateDep,
) -> AgentPublic:
    """Change an agent; ``{"status": "paused"}`` pauses it (admins)."""
    agent = await service.update(session, principal, agent, body, state.skills, state.models)
    return service.to_public(agent, state.skills)


@router.delete("/v1/agents/{slug}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_agent(agent: AgentDep, principal: AdminPrincipal) -> None:
    """Archive an agent (admins)."""
    await service.archive(agent)


@router.get("/v1/skills", response_model=Page[SkillPublic])
async def list_skills(principal: ViewerPrincipal, state: StateDep) -> Page[SkillPublic]:
    """Skills available to agents in this deployment."""
    items = [SkillPublic(name=s.name, description=s.description) for s in state.skills.all()]
    return Page(items=items, cursor=None, has_more=False)
