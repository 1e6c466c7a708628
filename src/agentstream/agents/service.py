"""Agents of a team: CRUD by slug, archive on delete."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from agentstream import tenancy
from agentstream.agents.schemas import AgentCreate, AgentPublic, AgentSettings, AgentUpdate
from agentstream.kit.cache import Caches
from agentstream.kit.errors import Conflict, NotFound, ValidationFailed
from agentstream.kit.pagination import PageParams, paginate
from agentstream.llm.registry import ModelRegistry, known_providers
from agentstream.mcp_servers import service as mcp_service
from agentstream.models import Agent, AgentStatus
from agentstream.skills.catalog import SkillCatalog
from agentstream.tenancy import Caller


@dataclass(frozen=True)
class ChatAgent:
    """What a chat run reads of its agent: an immutable copy, safe to cache across requests."""

    id: uuid.UUID
    team_id: uuid.UUID
    slug: str
    instructions: str
    model: str
    skills: tuple[str, ...] | None
    status: AgentStatus
    settings: Mapping[str, Any]
    mcp_servers: tuple[str, ...] = ()

    @classmethod
    def of(cls, agent: Agent) -> ChatAgent:
        """Copy the row."""
        skills = tuple(agent.skills) if agent.skills is not None else None
        settings = MappingProxyType(dict(agent.settings))
        return cls(
            agent.id,
            agent.team_id,
            agent.slug,
            agent.instructions,
            agent.model,
            skills,
            agent.status,
            settings,
            tuple(agent.mcp_servers or ()),
        )


async def chat_agent(session: AsyncSession, caches: Caches, caller: Caller, slug: str) -> ChatAgent:
    """The caller's team's agent with this slug for a chat run: cached per team and forgotten
    when any worker commits a change to the team's agents (``kit.cache``)."""
    cached: ChatAgent | None = caches.agents.get(caller.team_id, slug)
    if cached is not None:
        return cached
    ticket = caches.agents.ticket(caller.team_id, slug)
    agent = ChatAgent.of(await get_by_slug(session, caller, slug))
    caches.agents.put(caller.team_id, slug, agent, ticket)
    return agent


async def get_by_slug(session: AsyncSession, caller: Caller, slug: str) -> Agent:
    """The caller's team's agent with this slug, or ``agent_not_found``."""
    agent = await session.scalar(tenancy.agents(caller).where(Agent.slug == slug))
    if agent is None:
        raise NotFound("agent")
    return agent


def allowed_skills(agent: Agent | ChatAgent, catalog: SkillCatalog) -> frozenset[str]:
    """The skills this agent may use right now (``None`` stored means all available)."""
    if agent.skills is None:
        return catalog.names()
    return frozenset(agent.skills) & catalog.names()


def to_public(agent: Agent, catalog: SkillCatalog) -> AgentPublic:
    """Render an agent with its effective skill list."""
    return AgentPublic(
        id=agent.id,
        slug=agent.slug,
        name=agent.name,
        instructions=agent.instructions,
        model=agent.model,
        skills=sorted(allowed_skills(agent, catalog)),
        mcp_servers=list(agent.mcp_servers or ()),
        status=agent.status,
        settings=AgentSettings.model_validate(agent.settings),
        created_at=agent.created_at,
        updated_at=agent.updated_at,
    )


def check_model(model: str, models: ModelRegistry) -> None:
    """422 unless ``model`` names a provider that exists (or a model registered here)."""
    if not models.is_known(model):
        providers = list(known_providers())
        raise ValidationFailed(
            f"Unknown model provider in '{model}'. Known providers: {', '.join(providers)}.",
            details={"known_providers": providers},
        )


def _check_skills(skills: list[str] | None, catalog: SkillCatalog) -> None:
    unknown = sorted(set(skills or ()) - catalog.names())
    if unknown:
        raise ValidationFailed(
            f"Unknown skills: {', '.join(unknown)}.",
            details={"unknown_skills": unknown, "available": sorted(catalog.names())},
        )


async def _check_mcp_servers(session: AsyncSession, caller: Caller, names: list[str]) -> None:
    unknown = await mcp_service.unknown_names(session, caller, names)
    if unknown:
        raise ValidationFailed(
            f"Unknown MCP servers: {', '.join(unknown)}.",
            details={"unknown_mcp_servers": unknown},
        )


async def create(
    session: AsyncSession,
    caller: Caller,
    body: AgentCreate,
    catalog: SkillCatalog,
    models: ModelRegistry,
    default_model: str,
) -> Agent:
    """Create an agent; a duplicate slug in the team is a conflict."""
    _check_skills(body.skills, catalog)
    check_model(body.model or default_model, models)
    await _check_mcp_servers(session, caller, body.mcp_servers)
    agent = Agent(
        team_id=caller.team_id,
        slug=body.slug,
        name=body.name,
        instructions=body.instructions,
        model=body.model or default_model,
        skills=body.skills,
        mcp_servers=list(dict.fromkeys(body.mcp_servers)),
        settings=body.settings.model_dump(exclude_none=True),
    )
    session.add(agent)
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError as exc:
        raise Conflict(f"An agent with slug '{body.slug}' already exists.") from exc
    return agent


async def update(
    session: AsyncSession,
    caller: Caller,
    agent: Agent,
    body: AgentUpdate,
    catalog: SkillCatalog,
    models: ModelRegistry,
) -> Agent:
    """Apply the fields present in the request (``skills: null`` means every skill)."""
    changes = body.model_dump(exclude_unset=True)
    if body.model is not None:
        check_model(body.model, models)
    for name in ("name", "instructions", "model"):
        if changes.get(name) is not None:
            setattr(agent, name, changes[name])
    if "skills" in changes:
        _check_skills(body.skills, catalog)
        agent.skills = body.skills
    if body.mcp_servers is not None:
        await _check_mcp_servers(session, caller, body.mcp_servers)
        agent.mcp_servers = list(dict.fromkeys(body.mcp_servers))
    if body.status is not None:
        agent.status = AgentStatus(body.status)
    if body.settings is not None:
        agent.settings = body.settings.model_dump(exclude_none=True)
    await session.flush()
    return agent


async def archive(agent: Agent) -> None:
    """Deleting an agent archives it; its conversations stay readable."""
    agent.status = AgentStatus.archived


async def list_agents(
    session: AsyncSession, caller: Caller, params: PageParams, *, include_archived: bool
) -> tuple[list[Agent], str | None, bool]:
    """A page of the team's agents, newest first."""
    stmt = tenancy.agents(caller)
    if not include_archived:
        stmt = stmt.where(Agent.status != AgentStatus.archived)
    rows, cursor, has_more = await paginate(session, stmt, Agent, params)
    return list(rows), cursor, has_more
