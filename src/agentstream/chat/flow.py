"""The chat flow, once: ``prepare`` (steps 1-5) in one short transaction, ``execute`` (6-8).

``prepare`` raises domain errors before anything is streamed, so transports can answer with
ordinary HTTP errors; ``execute`` never raises to its consumer: every run ends with exactly
one terminal event (``done`` or ``error``) once its reply is stored (or, if the database is
down, kept for a retry that will store it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from typing import Any

from pydantic_ai import RunContext
from pydantic_ai.direct import model_request_stream
from pydantic_ai.exceptions import (
    UsageLimitExceeded,
)
from pydantic_ai.messages import (
    ModelMessage,
    ModelRequest,
    ModelRequestPart,
    UserPromptPart,
)
from pydantic_ai.models import ModelRequestParameters
from pydantic_ai.settings import ModelSettings
from pydantic_ai.tool_manager import ToolManager
from pydantic_ai.tools import ToolDefinition
from pydantic_ai.toolsets import AbstractToolset, CombinedToolset
from pydantic_ai.usage import RunUsage
from sqlalchemy.exc import IntegrityError

from agentstream.agents.service import ChatAgent, allowed_skills, chat_agent
from agentstream.approvals.resume import Resume
from agentstream.approvals.service import continue_turn
from agentstream.auth.service import Principal
from agentstream.chat import events as ev
from agentstream.chat.deps import ChatDeps
from agentstream.chat.history import rebuild_history
from agentstream.chat.multitask import TurnGate, Waiting, multitask_of, take_turn
from agentstream.chat.prompt import build_instructions
from agentstream.chat.schemas import ChatRequest
from agentstream.chat.tool_calls import resumed, run_calls
from agentstream.chat.translate import Reply, Translator
from agentstream.conversations.turns import RunIdentity, TurnOutcome, start_turn
from agentstream.db import transaction
from agentstream.kit.errors import AgentInactive, ConversationBusy
from agentstream.kit.priority import setup_first
from agentstream.mcp_servers.service import run_servers
from agentstream.mcp_servers.toolsets import McpServerConfig, server_toolset, tool_needs_approval
from agentstream.memory.extraction import Turn
from agentstream.memory.service import VectorSearch, retrieve
from agentstream.models import AgentStatus, MessageStatus
from agentstream.observability import metrics
from agentstream.observability.tracing import RunSpan
from agentstream.runs.registry import RunControl
from agentstream.skills.tools import build_skill_toolset
from agentstream.state import AppState

log = logging.getLogger("agentstream.chat")

_SKILL_TOOLS = build_skill_toolset()
# As pydantic-ai's agent defaults: a model that keeps calling tools ends as a failure, and a
# tool call with bad arguments (or a tool asking for a retry) gets one more try.
_MAX_MODEL_REQUESTS = 50
_TOOL_RETRIES = 1


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


def _mcp_needs_approval(ctx: RunContext[Any], tool: ToolDefinition, args: dict[str, Any]) -> bool:
    return tool_needs_approval(tool)


async def _toolset(
    state: AppState, run: PreparedRun, deps: ChatDeps
) -> AbstractToolset[ChatDeps] | None:
    """The run's tools: the skill tools (if it may use skills), its MCP servers' tools (those
    the server's ``approval`` names wait for approval) and any registered tool source's."""
    toolsets: list[AbstractToolset[ChatDeps]] = [_SKILL_TOOLS] if run.skills else []
    timeout = state.settings.mcp_timeout_s
    toolsets.extend(
        server_toolset(server, timeout, state.mcp_tools).approval_required(_mcp_needs_approval)
        for server in run.mcp_servers
    )
    toolsets.extend(await state.tools.toolsets(deps))
    if len(toolsets) <= 1:
        return toolsets[0] if toolsets else None
    return CombinedToolset(toolsets)


async def _stream_model(
    state: AppState, run: PreparedRun, reply: Reply
) -> AsyncIterator[ev.ChatEvent]:
    """Step 6: request, stream, call the tools asked for, and request again until a plain reply.

    The model is driven through pydantic-ai's direct API and its tool manager rather than
    ``Agent.iter``: the agent graph's per-event machinery costs about four times the model's
    own streaming per token (docs/benchmarks.md), and a chat turn needs none of it.
    """
    identity = run.identity
    model = state.models.resolve(identity.model)
    deps = ChatDeps(identity, state.skills, run.skills, run.context)
    translator = Translator(identity.conversation_id, reply)
    instructions = run.instructions or None
    messages: list[ModelMessage] = list(run.history)
    if run.resume is None:
        messages.append(ModelRequest([UserPromptPart(run.prompt)], instructions=instructions))
    ctx = RunContext(
        deps=deps, model=model, usage=RunUsage(), prompt=run.prompt, max_retries=_TOOL_RETRIES
    )
    toolset = await _toolset(state, run, deps)
    async with contextlib.AsyncExitStack() as stack:
        tools: ToolManager[ChatDeps] | None = None
        if toolset is not None:
            # MCP servers connect (once, when first needed) within it and close with it.
            await stack.enter_async_context(toolset)
            # With tracing on, pydantic-ai's own instrumentation makes the model and tool spans.
            tools = await ToolManager[ChatDeps](toolset, state.tracing.tool_spans).for_run_step(ctx)
        if run.resume is not None:
            messages.append(run.resume.response())
            results: list[ModelRequestPart] = []
            async for item in resumed(run.resume, tools, translator):
                if isinstance(item, ev.Event):
                    yield item
                else:
                    results.append(item)
            messages.append(ModelRequest(results, instructions=instructions))
        instrument = state.tracing.instrumentation or False
        pacer = setup_first.pacer()  # this stream's budget for giving way to new ones
        parameters = ModelRequestParameters(function_tools=tools.tool_defs if tools else [])
        for step in range(1, _MAX_MODEL_REQUESTS + 1):
            async with model_request_stream(
                model,
                messages,
                model_settings=run.model_settings,
                model_request_parameters=parameters,
                instrument=instrument,
            ) as stream:
                async for event in stream:
                    await pacer.give_way()
                    if (ours := translator.translate(event)) is not None:
                        yield ours
                response = stream.get()
            reply.input_tokens += response.usage.input_tokens
            reply.output_tokens += response.usage.output_tokens
            messages.append(response)
            if tools is None or not response.tool_calls:
                return
            results = []
            async for item in run_calls(tools, response.tool_calls, translator):
                if isinstance(item, ev.Event):
                    yield item
                else:
                    results.append(item)
            if reply.approvals:
                return  # paused: the model is asked again once every waiting call is decided
            messages.append(ModelRequest(results, instructions=instructions))
            ctx = replace(ctx, run_step=step, messages=messages)
            tools = await tools.for_run_step(ctx)
    raise UsageLimitExceeded(f"The reply needed more than {_MAX_MODEL_REQUESTS} model requests.")


async def _model_phase(
    state: AppState, run: PreparedRun, reply: Reply, control: RunControl
) -> AsyncIterator[ev.ChatEvent | MessageStatus]:
    """The model's events, then the status the reply ended with (its last item)."""
    try:
        if control.cancel_requested:
            raise asyncio.CancelledError
        control.in_model = True
        async for event in _stream_model(state, run, reply):
            yield event
    except asyncio.CancelledError:
        # Only a cancel of this run (the task's own) lands here; it ends the model call.
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            task.uncancel()
        yield control.cancel_status
        return
    except Exception as error:
        log.exception("model run failed", extra={"message_id": str(run.identity.run_id)})
        metrics.model_error()
        if run.trace is not None:
            run.trace.failed(error)
        yield MessageStatus.failed
        return
    finally:
        control.in_model = False
    yield MessageStatus.awaiting_approval if reply.approvals else MessageStatus.complete


# Replies that end in an ``error`` event rather than ``done``.
_ERRORS: dict[MessageStatus, tuple[ev.ErrorCode, str]] = {
    MessageStatus.failed: ("model_error", "The model failed to produce a reply."),
    MessageStatus.interrupted: (
        "interrupted",
        "The server is shutting down; the reply so far is stored.",
    ),
}


def _terminal(identity: RunIdentity, status: MessageStatus, usage: ev.Usage) -> list[ev.ChatEvent]:
    """The events that end a run whose reply is stored (or safely kept) with ``status``."""
    if status in _ERRORS:
        code, content = _ERRORS[status]
        error = ev.Error(
            content=content,
            error_code=code,
            conversation_id=identity.conversation_id,
            message_id=identity.run_id,
        )
        return [error]
    done = ev.Done(
        conversation_id=identity.conversation_id,
        message_id=identity.run_id,
        usage=usage,
        status=status,
        content="Cancelled by client" if status is MessageStatus.cancelled else None,
    )
    ended = status in (MessageStatus.complete, MessageStatus.awaiting_approval)
    return [ev.UsageEvent(usage=usage), done] if ended else [done]


async def _phases(
    state: AppState, run: PreparedRun, reply: Reply, control: RunControl
) -> AsyncIterator[ev.ChatEvent | MessageStatus]:
    """A run's events up to its terminal ones, then the status its reply ends with: a queued
    turn's wait for its conversation first, then memory_context, typing and the model's."""
    if run.waiting is not None:
        if not run.waiting.interrupt:
            ahead = run.waiting.ahead.last
            yield ev.Queued(run_id=ahead, conversation_id=run.identity.conversation_id)
        turn = await take_turn(state, run.identity, run.waiting, control)
        if isinstance(turn, MessageStatus):
            yield turn  # cancelled (or the server stopped) before it started
            return
        run = replace(run, history=rebuild_history(turn))
    yield ev.MemoryContext(memory_count=run.memory_count)
    yield ev.Typing()
    state.writer.track(run.identity.run_id, reply)
    async for item in _model_phase(state, run, reply, control):
        yield item


async def execute(
    state: AppState, run: PreparedRun, control: RunControl
) -> AsyncIterator[ev.ChatEvent]:
    """Steps 6-8 as events: memory_context, typing, deltas and tools, usage, done (or error)."""
    identity = run.identity
    reply = Reply()
    started = time.perf_counter()
    status, produced = MessageStatus.failed, 0
    async for item in _phases(state, run, reply, control):
        if isinstance(item, MessageStatus):
            status = item
        else:
            produced += 1
            yield item
    usage = reply.usage(identity.model)
    metrics.tokens(usage.input_tokens, usage.output_tokens)
    if run.trace is not None:
        run.trace.usage(usage.input_tokens, usage.output_tokens)
    terminal = _terminal(identity, status, usage)
    outcome = TurnOutcome(
        content=reply.content,
        status=status,
        tool_calls=list(reply.tool_calls.values()),
        usage=usage.model_dump(),
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        duration_ms=int((time.perf_counter() - started) * 1000),
        last_seq=produced + len(terminal),
        approvals=reply.approvals if status is MessageStatus.awaiting_approval else [],
    )
    await control.reply_ended()  # a final write waiting for the database does not count
    try:
        await state.writer.finish(identity, outcome)
    except Exception:
        log.exception("could not store the reply", extra={"message_id": str(identity.run_id)})
        yield ev.Error(
            content="The reply could not be stored.",
            error_code="internal_error",
            conversation_id=identity.conversation_id,
            message_id=identity.run_id,
        )
        return
    if status is MessageStatus.complete:
        state.extractor.schedule(
            Turn(run=identity, user_message=run.prompt, assistant_message=outcome.content)
        )
    for event in terminal:
        yield event
