"""Typed application state, built by the lifespan (or by tests and the CLI) — no globals."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from starlette.requests import HTTPConnection

from agentstream.chat.tools import ToolSources
from agentstream.conversations.writer import TurnWriter
from agentstream.db import SessionMaker
from agentstream.kit.cache import Caches
from agentstream.kit.redis import RedisGuard
from agentstream.llm.registry import ModelRegistry
from agentstream.mcp_servers.toolsets import ToolListings
from agentstream.memory.extraction import MemoryExtractor
from agentstream.memory.semantic import SemanticMemory
from agentstream.observability.tracing import Tracing
from agentstream.ratelimit.limiter import RateLimiter
from agentstream.runs.coordinator import Coordinator
from agentstream.runs.registry import RunRegistry
from agentstream.settings import Settings
from agentstream.skills.catalog import SkillCatalog


@dataclass
class AppState:
    """Everything long-lived the server owns."""

    settings: Settings
    worker_id: str  # this process, as the owner of the runs it executes
    engine: AsyncEngine
    sessions: SessionMaker
    redis: Redis | None  # the raw client; prefer redis_guard, which fails fast when Redis hangs
    redis_guard: RedisGuard | None
    limiter: RateLimiter
    skills: SkillCatalog
    models: ModelRegistry
    runs: RunRegistry
    coordinator: Coordinator
    writer: TurnWriter
    extractor: MemoryExtractor
    memory: SemanticMemory
    caches: Caches
    tracing: Tracing
    # Where agents' tools come from beyond skills (MCP servers; tests register their own).
    tools: ToolSources = field(default_factory=ToolSources)
    # MCP servers' tools as last listed on this worker.
    mcp_tools: ToolListings = field(default_factory=ToolListings)


def get_state(conn: HTTPConnection) -> AppState:
    """The app state of the connection's app."""
    state: AppState = conn.app.state.agentstream
    return state


async def _state(conn: HTTPConnection) -> AppState:
    # A coroutine: FastAPI hands a plain function dependency to a thread, per request.
    return get_state(conn)


StateDep = Annotated[AppState, Depends(_state)]


async def get_session(state: StateDep) -> AsyncIterator[AsyncSession]:
    """One session per request, committed once when the endpoint returns (before the response)."""
    async with state.sessions() as session:
        yield session
        await session.commit()


SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
