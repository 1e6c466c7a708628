"""Preparing a chat run (steps 1-5 of the flow) in one short transaction, before anything
streams: the agent, the conversation and the turn's rows, memories and the prompt; or, for a
paused turn's decisions, the decided turn and its continuation's rows.

``prepare`` raises domain errors (an inactive agent, a busy conversation) so transports can
answer them with ordinary HTTP errors; ``chat.flow.execute`` then runs what it prepared.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from pydantic_ai.messages import ModelMessage
from pydantic_ai.settings import ModelSettings
from sqlalchemy.exc import IntegrityError

from agentstream.agents.service import ChatAgent, allowed_skills, chat_agent
from agentstream.approvals.resume import Resume
from agentstream.approvals.service import continue_turn
from agentstream.auth.service import Principal
from agentstream.chat.history import rebuild_history
from agentstream.chat.multitask import TurnGate, Waiting, multitask_of
from agentstream.chat.prompt import build_instructions
from agentstream.chat.schemas import ChatRequest
from agentstream.conversations.turns import RunIdentity, start_turn
from agentstream.db import transaction
from agentstream.kit.errors import AgentInactive, ConversationBusy
from agentstream.mcp_servers.service import run_servers
from agentstream.mcp_servers.toolsets import McpServerConfig
from agentstream.memory.service import VectorSearch, retrieve
from agentstream.models import AgentStatus
from agentstream.observability.tracing import RunSpan
from agentstream.state import AppState


@dataclass(frozen=True)
class PreparedRun:
    """Everything a run needs, read in one short transaction before the model is called."""

    identity: RunIdentity
    prompt: str
    instructions: str
    history: list[ModelMessage]
    model_settings: ModelSettings
    skills: frozenset[str]
    context: dict[str, Any]
    memory_count: int
    on_disconnect: str
    trace: RunSpan | None = None  # the run's span, when tracing is on
    waiting: Waiting | None = None  # stored ``queued``: starts when the conversation is free
    mcp_servers: tuple[McpServerConfig, ...] = ()  # the agent's, with their headers opened
    resume: Resume | None = None  # a continuation: the paused turn, decided; no new prompt


def _active(agent: ChatAgent) -> ChatAgent:
    if agent.status is not AgentStatus.active:
        raise AgentInactive(f"Agent '{agent.slug}' is {agent.status.value}.")
    return agent


def _model_settings(agent: ChatAgent) -> ModelSettings:
    settings = ModelSettings()
    if agent.settings.get("temperature") is not None:
        settings["temperature"] = float(agent.settings["temperature"])
    if agent.settings.get("max_tokens") is not None:
        settings["max_tokens"] = int(agent.settings["max_tokens"])
    return settings


# A turn whose rows lose a race to another worker's (the conversation's one running run, or a
# UI client id's first use) is prepared again, and then sees the winner.
_PREPARE_ATTEMPTS = 3


async def prepare(
    state: AppState,
    principal: Principal,
    slug: str,
    request: ChatRequest,
    trace: RunSpan | None = None,
    *,
    paused_run: uuid.UUID | None = None,
) -> PreparedRun:
    """Steps 1-5: agent, conversation, user message (committed), memories, prompt; or, for
    ``decisions``, the decided paused turn (of ``paused_run``, when given) and its
    continuation's rows."""
    if request.decisions is not None:
        try:
            return await _prepare_once(state, principal, slug, request, trace, None, paused_run)
        except IntegrityError:
            # The conversation has a running run (the unique index): one turn at a time.
            raise ConversationBusy() from None
    assert request.message is not None
    vector = None
    if state.caches.memories.get(principal.team_id, principal.user_id) is not False:
        # Before the transaction: no lock is held while the embedding model answers (at
        # most AGENTSTREAM_EMBEDDING_TIMEOUT_S; a caller known to have no memories skips it).
        vector = await state.memory.vector_search(request.message)
    for attempt in range(1, _PREPARE_ATTEMPTS + 1):
        try:
            return await _prepare_once(state, principal, slug, request, trace, vector, None)
        except IntegrityError:
            if attempt == _PREPARE_ATTEMPTS:
                raise
    raise AssertionError("unreachable")


async def _prepare_once(
    state: AppState,
    principal: Principal,
    slug: str,
    request: ChatRequest,
    trace: RunSpan | None,
    vector: VectorSearch | None,
    paused_run: uuid.UUID | None,
) -> PreparedRun:
    resume: Resume | None = None
    async with transaction(state.sessions) as session:
        agent = _active(await chat_agent(session, state.caches, principal, slug))
        gate = TurnGate(
            principal,
            multitask_of(request.multitask, agent.settings.get("multitask")),
            state.settings.approval_ttl_s,
        )
        trace_id = trace.trace_id if trace else None
        if request.decisions is not None:
            continuation = await continue_turn(
                session,
                principal,
                agent,
                request.decisions,
                worker_id=state.worker_id,
                ttl_s=state.settings.approval_ttl_s,
                trace_id=trace_id,
                paused_run=paused_run,
            )
            identity, previous = continuation.identity, continuation.previous
            prompt, resume = continuation.prompt, continuation.resume
        else:
            assert request.message is not None
            prompt = request.message
            identity, previous = await start_turn(
                session,
                principal,
                agent,
                prompt,
                request.conversation_id,
                state.worker_id,
                client_id=request.client_id,
                trace_id=trace_id,
                admit=gate.admit,
            )
        memories = await retrieve(
            session,
            principal,
            agent.id,
            prompt,
            state.settings.memory_limit,
            state.caches,
            vector,
        )
        mcp_servers = await run_servers(session, principal, agent.mcp_servers, state.settings)
    if trace is not None:
        trace.identify(identity)
    skills = allowed_skills(agent, state.skills)
    context = request.context or {}
    return PreparedRun(
        identity=identity,
        prompt=prompt,
        instructions=build_instructions(
            agent.instructions, state.skills, skills, [m.content for m in memories], context
        ),
        history=rebuild_history(previous),
        model_settings=_model_settings(agent),
        skills=skills,
        context=context,
        memory_count=len(memories),
        on_disconnect=request.on_disconnect,
        trace=trace,
        waiting=gate.waiting,
        mcp_servers=mcp_servers,
        resume=resume,
    )
