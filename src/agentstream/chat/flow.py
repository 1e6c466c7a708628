"""The chat flow, once: ``chat.prepare`` (steps 1-5) in one short transaction, then
``execute`` (6-8) here.

``execute`` never raises to its consumer: every run ends with exactly
one terminal event (``done`` or ``error``) once its reply is stored (or, if the database is
down, kept for a retry that will store it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import replace
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
from pydantic_ai.tool_manager import ToolManager
from pydantic_ai.tools import ToolDefinition
from pydantic_ai.toolsets import AbstractToolset, CombinedToolset
from pydantic_ai.usage import RunUsage

from agentstream.chat import events as ev
from agentstream.chat.deps import ChatDeps
from agentstream.chat.history import rebuild_history
from agentstream.chat.multitask import take_turn
from agentstream.chat.prepare import PreparedRun
from agentstream.chat.tool_calls import resumed, run_calls
from agentstream.chat.translate import Reply, Translator
from agentstream.conversations.turns import RunIdentity, TurnOutcome
from agentstream.kit.priority import setup_first
from agentstream.mcp_servers.toolsets import server_toolset, tool_needs_approval
from agentstream.memory.extraction import Turn
from agentstream.models import MessageStatus
from agentstream.observability import metrics
from agentstream.runs.registry import RunControl
from agentstream.skills.tools import build_skill_toolset
from agentstream.state import AppState

log = logging.getLogger("agentstream.chat")

_SKILL_TOOLS = build_skill_toolset()
# As pydantic-ai's agent defaults: a model that keeps calling tools ends as a failure, and a
# tool call with bad arguments (or a tool asking for a retry) gets one more try.
_MAX_MODEL_REQUESTS = 50
_TOOL_RETRIES = 1


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
