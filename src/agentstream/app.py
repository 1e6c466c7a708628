"""The application factory; the lifespan owns every long-lived resource."""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from sqlalchemy.ext.asyncio import AsyncEngine

from agentstream.agents.endpoints import router as agents_router
from agentstream.apikeys.endpoints import router as apikeys_router
from agentstream.approvals.endpoints import router as approvals_router
from agentstream.auth.endpoints import router as auth_router
from agentstream.chat.endpoints import router as chat_router
from agentstream.conversations.endpoints import router as conversations_router
from agentstream.conversations.journal import Journal
from agentstream.conversations.writer import TurnWriter
from agentstream.db import SessionMaker, create_engine, create_session_maker, wal_checkpointer
from agentstream.health.endpoints import router as health_router
from agentstream.kit.cache import Caches, session_info
from agentstream.kit.handlers import install_error_handlers
from agentstream.kit.middleware import RequestContextMiddleware
from agentstream.kit.openapi import install_openapi
from agentstream.kit.redis import RedisGuard, build_redis
from agentstream.llm.registry import ModelRegistry
from agentstream.mcp_servers.endpoints import router as mcp_servers_router
from agentstream.memory.endpoints import router as memory_router
from agentstream.memory.extraction import MemoryExtractor
from agentstream.memory.semantic import SemanticMemory
from agentstream.observability import metrics
from agentstream.observability.endpoints import router as metrics_router
from agentstream.observability.tracing import Tracing
from agentstream.ratelimit.limiter import build_rate_limiter
from agentstream.runs.coordinator import Coordinator
from agentstream.runs.endpoints import router as runs_router
from agentstream.runs.lease import Lease
from agentstream.runs.limits import MemoryActiveRuns
from agentstream.runs.redis import RedisActiveRuns, RedisRunLog
from agentstream.runs.registry import RunRegistry
from agentstream.settings import Settings
from agentstream.skills.catalog import SkillCatalog
from agentstream.state import AppState
from agentstream.streaming.endpoints import router as streaming_router
from agentstream.teams.endpoints import router as teams_router
from agentstream.usage.endpoints import router as usage_router
from agentstream.web import endpoints as web

log = logging.getLogger("agentstream")


@asynccontextmanager
async def _runs(
    settings: Settings,
    sessions: SessionMaker,
    guard: RedisGuard | None,
    worker_id: str,
    *,
    serving: bool,
) -> AsyncIterator[tuple[RunRegistry, Coordinator]]:
    """The run registry and the coordinator: in process, or shared through Redis. Only a
    ``serving`` process coordinates (heartbeat, reaper, cancels, mirror)."""
    if guard is None or settings.redis_url is None:
        registry = RunRegistry(
            MemoryActiveRuns(),
            max_per_user=settings.max_active_runs_per_user,
            max_bytes=int(settings.run_events_max_mb * 2**20),
            retain_s=settings.run_events_ttl_s,
        )
        coordinator = Coordinator(
            worker_id=worker_id,
            registry=registry,
            sessions=sessions,
            lease_s=settings.run_lease_s,
            ttl_s=settings.run_events_ttl_s,
        )
        if serving:
            await coordinator.start()
        try:
            yield registry, coordinator
        finally:
            await coordinator.aclose()
        return
    log_mirror = RedisRunLog(
        guard, ttl_s=settings.run_events_ttl_s, retry_s=settings.redis_cooldown_s
    )
    active_runs = RedisActiveRuns(guard, lease_s=settings.run_lease_s)
    registry = RunRegistry(
        active_runs,
        max_per_user=settings.max_active_runs_per_user,
        max_bytes=int(settings.run_events_max_mb * 2**20),
        # Redis keeps the events for every worker; this worker's copy only serves it faster.
        retain_s=min(settings.run_events_ttl_s, 60.0),
        mirror=log_mirror,
    )
    # Blocking reads (XREAD BLOCK, pub/sub) wait longer than the guard's short timeouts.
    blocking = Redis.from_url(settings.redis_url, socket_connect_timeout=settings.redis_timeout_s)
    coordinator = Coordinator(
        worker_id=worker_id,
        registry=registry,
        sessions=sessions,
        lease_s=settings.run_lease_s,
        ttl_s=settings.run_events_ttl_s,
        guard=guard,
        blocking=blocking,
        active_runs=active_runs,
        lease=Lease(
            settings.redis_url,
            worker_id=worker_id,
            lease_s=settings.run_lease_s,
            timeout_s=settings.redis_timeout_s,
        ),
    )
    if serving:
        log_mirror.start()
        await coordinator.start()
    try:
        yield registry, coordinator
    finally:
        await coordinator.aclose()
        await log_mirror.aclose()
        await blocking.aclose()


def _database(settings: Settings, stack: contextlib.AsyncExitStack) -> AsyncEngine:
    """The engine (disposed last), and SQLite's WAL checkpoints off the event loop."""
    engine = create_engine(
        settings.resolved_database_url,
        pool_size=settings.database_pool_size,
        max_overflow=settings.database_max_overflow,
        timeout_s=settings.database_timeout_s,
        statement_timeout_s=settings.database_statement_timeout_s,
    )
    stack.push_async_callback(engine.dispose)
    if (checkpointer := wal_checkpointer(engine)) is not None:
        checkpointer.start()
        stack.push_async_callback(checkpointer.aclose)
    return engine


@asynccontextmanager
async def build_state(
    settings: Settings, *, tracing: Tracing | None = None, serving: bool = True
) -> AsyncIterator[AppState]:
    """Create the engine, Redis clients, writer, runs, limiter; close them all on exit.

    A process that does not serve (``serving=False``: the CLI's ``create-user``,
    ``create-agent``, the demo account at ``serve``'s start) never touches runs: no reaper, no
    coordinator, no journal replay — it cannot tell live workers' runs from dead ones'.

    They close in reverse order: runs are interrupted first (their replies stored through the
    writer, which journals what the database refuses), then the rest; tracing last, so the
    interrupted runs' spans are exported too. ``tracing`` defaults to the configured one.
    """
    async with contextlib.AsyncExitStack() as stack:
        tracing = tracing or Tracing.from_settings(settings)
        stack.push_async_callback(tracing.aclose)
        engine = _database(settings, stack)
        redis: Redis | None = None
        guard: RedisGuard | None = None
        if settings.redis_url:
            redis = build_redis(settings.redis_url, settings.redis_timeout_s)
            stack.push_async_callback(redis.aclose)
            # One guard for every Redis feature, so one detected outage makes them all skip
            # it; its deadline covers a multi-round-trip call (a Lua script's first load).
            guard = RedisGuard(
                redis,
                cooldown_s=settings.redis_cooldown_s,
                timeout_s=4 * settings.redis_timeout_s,
            )
        skills = SkillCatalog.load(settings.skills_dir)
        models = ModelRegistry(settings, skills)
        caches = Caches(settings.cache_ttl_s, guard)
        sessions = create_session_maker(
            engine, timeout_s=settings.database_timeout_s, info=session_info(caches)
        )
        if settings.redis_url:
            # No silent reconnects: the caches must know when their subscription broke.
            listener = Redis.from_url(
                settings.redis_url,
                socket_connect_timeout=settings.redis_timeout_s,
                retry=Retry(NoBackoff(), 0),
            )
            stack.push_async_callback(listener.aclose)
            caches.start(listener)
        stack.push_async_callback(caches.aclose)
        worker_id = uuid.uuid4().hex
        journal = Journal(
            settings.data_dir / "journal",
            worker_id,
            legacy=settings.data_dir / "pending-replies.jsonl",  # written by earlier versions
        )
        writer = TurnWriter(
            sessions,
            checkpoint_s=settings.checkpoint_s,
            timeout_s=settings.database_timeout_s,
            journal=journal,
        )
        if serving:
            await writer.start()
        stack.push_async_callback(writer.aclose)
        registry, coordinator = await stack.enter_async_context(
            _runs(settings, sessions, guard, worker_id, serving=serving)
        )
        memory = SemanticMemory(settings, engine, sessions)
        await memory.start()
        stack.push_async_callback(memory.aclose)
        extractor = MemoryExtractor(sessions, models, settings, on_stored=memory.indexer.wake)
        stack.push_async_callback(extractor.aclose)
        limiter = build_rate_limiter(guard)
        stack.push_async_callback(limiter.aclose)
        stack.push_async_callback(registry.interrupt_all, settings.shutdown_grace_s)
        yield AppState(
            settings=settings,
            worker_id=worker_id,
            engine=engine,
            sessions=sessions,
            redis=redis,
            redis_guard=guard,
            limiter=limiter,
            skills=skills,
            models=models,
            runs=registry,
            coordinator=coordinator,
            writer=writer,
            extractor=extractor,
            memory=memory,
            caches=caches,
            tracing=tracing,
        )


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the FastAPI app; state is created when the lifespan starts."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with build_state(settings) as state:
            app.state.agentstream = state
            yield
        metrics.process_exiting()

    app = FastAPI(
        title="agentstream",
        version="0.1.0",
        summary="Multi-tenant AI agents with real-time streaming.",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    install_openapi(app)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_credentials=True,
            allow_methods=["*"],
            allow_headers=["*"],
            expose_headers=[
                "X-Request-ID",
                "Retry-After",
                "X-RateLimit-Reset",
                "X-Run-Id",
                "X-Conversation-Id",
            ],
        )
    app.add_middleware(RequestContextMiddleware)
    for router in (
        health_router,
        auth_router,
        teams_router,
        apikeys_router,
        agents_router,
        mcp_servers_router,
        conversations_router,
        chat_router,
        streaming_router,
        runs_router,
        approvals_router,
        memory_router,
        usage_router,
        metrics_router,
    ):
        app.include_router(router)
    app.include_router(web.router)
    app.mount(web.ASSETS_PATH, web.assets(), name="web")
    return app
