"""The chat flow, once: prepare (steps 1-5) in a short transaction, then run and persist (6-8).

``prepare`` raises domain errors before anything is streamed, so transports can answer
with ordinary HTTP errors; ``execute`` never raises to its consumer: every run ends with
exactly one terminal event (``done`` or ``error``) after its assistant message is stored.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from pydantic_ai import Agent
from pydantic_ai.messages import (
    FunctionToolCallEvent,
    FunctionToolResultEvent,
    ModelMessage,
    PartDeltaEvent,
    PartStartEvent,
    RetryPromptPart,
    TextPart,
    TextPartDelta,
)
from pydantic_ai.settings import ModelSettings
from pydantic_ai.toolsets import AbstractToolset
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from agentstream.agents.service import allowed_skills, get_by_slug
from agentstream.auth.service import Principal
from agentstream.chat import events as ev
from agentstream.chat.deps import ChatDeps
from agentstream.chat.history import rebuild_history
from agentstream.chat.prompt import build_instructions
from agentstream.chat.schemas import ChatRequest
from agentstream.conversations.service import get_owned, history
from agentstream.db import transaction
from agentstream.kit import jsonenc
from agentstream.kit.errors import AgentInactive
from agentstream.memory.extraction import Turn
from agentstream.memory.service import retrieve
from agentstream.models import Agent as AgentRow
from agentstream.models import (
    AgentStatus,
    Conversation,
    Message,
    MessageRole,
    MessageStatus,
    Role,
    utcnow,
)
from agentstream.skills.tools import build_skill_toolset
from agentstream.state import AppState
from agentstream.usage.service import record_usage

log = logging.getLogger("agentstream.chat")

# Stateless: the model, instructions, tools and deps are all given per run. ``None`` output
# makes an empty reply a valid (empty) answer instead of a retry loop.
_AGENT: Agent[ChatDeps, str | None] = Agent(
    deps_type=ChatDeps, output_type=[str, type(None)], defer_model_check=True
)
_SKILL_TOOLS = build_skill_toolset()


@dataclass(frozen=True)
class PreparedRun:
    """Everything a run needs, read in one short transaction before the model is called."""

    team_id: uuid.UUID
    user_id: uuid.UUID
    agent_id: uuid.UUID
    model: str
    conversation_id: uuid.UUID
    user_message_id: uuid.UUID
    message_id: uuid.UUID
    prompt: str
    instructions: str
    history: list[ModelMessage]
    model_settings: ModelSettings
    skills: frozenset[str]
    context: dict[str, Any]
    memory_count: int
    on_disconnect: str


@dataclass
class RunControl:
    """Shared between a run and whoever may stop it.

    Only the model phase is interruptible: a cancel that arrives before it starts is
    honoured when it would, and one that arrives while the result is being stored waits.
    """

    cancel_status: MessageStatus = MessageStatus.cancelled
    cancel_requested: bool = False
    in_model: bool = False


@dataclass
class _Progress:
    text: list[str] = field(default_factory=list)
    tool_calls: dict[str, dict[str, Any]] = field(default_factory=dict)
    input_tokens: int = 0
    output_tokens: int = 0

    def usage(self, model: str) -> ev.Usage:
        return ev.Usage(
            input_tokens=self.input_tokens,
            output_tokens=self.output_tokens,
            total_tokens=self.input_tokens + self.output_tokens,
            model=model,
        )


async def _conversation(
    session: AsyncSession, principal: Principal, agent: AgentRow, request: ChatRequest
) -> tuple[Conversation, Sequence[Message]]:
    """The caller's conversation with this agent (and its messages so far), or a new one."""
    if request.conversation_id is not None:
        conversation = await get_owned(
            session, principal, request.conversation_id, agent_id=agent.id
        )
        conversation.updated_at = utcnow()
        return conversation, await history(session, conversation.id)
    conversation = Conversation(
        team_id=principal.team_id,
        agent_id=agent.id,
        user_id=principal.user.id,
        title=request.message[:80],
    )
    session.add(conversation)
    await session.flush()
    return conversation, []


def _turn_rows(
    principal: Principal, conversation: Conversation, agent: AgentRow, text: str
) -> tuple[Message, Message]:
    """The user message and the assistant placeholder of a new turn."""
    # Explicit ids and ordered timestamps: one flush, and the assistant always sorts after.
    # The assistant row exists from the start: a crash leaves it 'interrupted', not lost.
    now = utcnow()
    common = {"team_id": principal.team_id, "conversation_id": conversation.id}
    user = Message(id=uuid.uuid4(), role=MessageRole.user, content=text, created_at=now, **common)
    assistant = Message(
        id=uuid.uuid4(),
        role=MessageRole.assistant,
        status=MessageStatus.interrupted,
        model=agent.model,
        created_at=now + timedelta(microseconds=1),
        **common,
    )
    return user, assistant


def _model_settings(agent: AgentRow) -> ModelSettings:
    settings = ModelSettings()
    if agent.settings.get("temperature") is not None:
        settings["temperature"] = float(agent.settings["temperature"])
    if agent.settings.get("max_tokens") is not None:
        settings["max_tokens"] = int(agent.settings["max_tokens"])
    return settings


async def prepare(
    state: AppState, principal: Principal, slug: str, request: ChatRequest
) -> PreparedRun:
    """Steps 1-5: agent, conversation, user message (committed), memories, prompt."""
    principal.require(Role.member)
    async with transaction(state.sessions) as session:
        agent = await get_by_slug(session, principal.team_id, slug)
        if agent.status is not AgentStatus.active:
            raise AgentInactive(f"Agent '{slug}' is {agent.status.value}.")
        conversation, previous = await _conversation(session, principal, agent, request)
        user_message, assistant = _turn_rows(principal, conversation, agent, request.message)
        session.add_all([user_message, assistant])
        memories = await retrieve(
            session,
            team_id=principal.team_id,
            agent_id=agent.id,
            user_id=principal.user.id,
            query=request.message,
            limit=state.settings.memory_limit,
        )
    skills = allowed_skills(agent, state.skills)
    context = request.context or {}
    return PreparedRun(
        team_id=principal.team_id,
        user_id=principal.user.id,
        agent_id=agent.id,
        model=agent.model,
        conversation_id=conversation.id,
        user_message_id=user_message.id,
        message_id=assistant.id,
        prompt=request.message,
        instructions=build_instructions(
            agent.instructions, state.skills, skills, [m.content for m in memories], context
        ),
        history=rebuild_history(previous),
        model_settings=_model_settings(agent),
        skills=skills,
        context=context,
        memory_count=len(memories),
        on_disconnect=request.on_disconnect,
    )


def _tool_result_text(content: Any) -> str:
    return content if isinstance(content, str) else jsonenc.dumps(content).decode()


@dataclass
class _Translator:
    """Turns pydantic-ai stream events into ours, recording what the reply is made of."""

    conversation_id: uuid.UUID
    progress: _Progress
    first_delta: bool = True

    def translate(self, event: object) -> ev.ChatEvent | None:
        text: str | None = None
        if isinstance(event, PartStartEvent) and isinstance(event.part, TextPart):
            text = event.part.content  # the first token arrives with the part, not as a delta
        elif isinstance(event, PartDeltaEvent) and isinstance(event.delta, TextPartDelta):
            text = event.delta.content_delta
        elif isinstance(event, FunctionToolCallEvent):
            return self._tool_call(event)
        elif isinstance(event, FunctionToolResultEvent):
            return self._tool_result(event)
        if not text:
            return None
        self.progress.text.append(text)
        delta = ev.TextDelta(
            content=text, conversation_id=self.conversation_id if self.first_delta else None
        )
        self.first_delta = False
        return delta

    def _tool_call(self, event: FunctionToolCallEvent) -> ev.ToolCall:
        # Emitted when the call is complete, so the arguments are too.
        part = event.part
        call = ev.ToolCall(
            tool_name=part.tool_name, tool_args=part.args_as_dict(), tool_call_id=part.tool_call_id
        )
        self.progress.tool_calls[part.tool_call_id] = call.model_dump(exclude={"type"})
        return call

    def _tool_result(self, event: FunctionToolResultEvent) -> ev.ToolResult:
        result = event.part
        content = (
            result.model_response()
            if isinstance(result, RetryPromptPart)
            else _tool_result_text(result.content)
        )
        record = self.progress.tool_calls.setdefault(
            result.tool_call_id,
            {"tool_name": result.tool_name, "tool_args": {}, "tool_call_id": result.tool_call_id},
        )
        record["tool_result_content"] = content
        return ev.ToolResult(
            tool_name=result.tool_name,
            tool_call_id=result.tool_call_id,
            tool_result_content=content,
        )


async def _stream_model(
    state: AppState, run: PreparedRun, progress: _Progress
) -> AsyncIterator[ev.ChatEvent]:
    """Step 6: run the agent, translating pydantic-ai events into ours as they happen."""
    deps = ChatDeps(
        team_id=run.team_id,
        user_id=run.user_id,
        agent_id=run.agent_id,
        skills=state.skills,
        allowed_skills=run.skills,
        context=run.context,
    )
    toolsets: list[AbstractToolset[ChatDeps]] = [_SKILL_TOOLS] if run.skills else []
    translator = _Translator(run.conversation_id, progress)
    async with _AGENT.iter(
        run.prompt,
        model=state.models.resolve(run.model),
        message_history=run.history,
        instructions=run.instructions or None,
        deps=deps,
        model_settings=run.model_settings,
        toolsets=toolsets,
    ) as agent_run:
        async for node in agent_run:
            if Agent.is_model_request_node(node) or Agent.is_call_tools_node(node):
                async with node.stream(agent_run.ctx) as stream:
                    async for event in stream:
                        if (ours := translator.translate(event)) is not None:
                            yield ours
            progress.input_tokens = agent_run.usage.input_tokens
            progress.output_tokens = agent_run.usage.output_tokens


async def _finalize(
    state: AppState,
    run: PreparedRun,
    progress: _Progress,
    status: MessageStatus,
    started: float,
) -> ev.Usage:
    """Step 7-8: store the assistant message and the usage row; schedule memory extraction."""
    usage = progress.usage(run.model)
    tool_calls = list(progress.tool_calls.values())
    async with transaction(state.sessions) as session:
        # One UPDATE of the row written by prepare(); no need to load it first.
        await session.execute(
            update(Message)
            .where(Message.id == run.message_id)
            .values(
                content="".join(progress.text),
                status=status,
                tool_calls=tool_calls,
                usage=usage.model_dump(),
            )
        )
        await record_usage(
            session,
            team_id=run.team_id,
            user_id=run.user_id,
            agent_id=run.agent_id,
            conversation_id=run.conversation_id,
            model=run.model,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            duration_ms=int((time.perf_counter() - started) * 1000),
            status=status,
        )
    if status is MessageStatus.complete:
        state.extractor.schedule(
            Turn(
                team_id=run.team_id,
                agent_id=run.agent_id,
                user_id=run.user_id,
                model=run.model,
                user_message=run.prompt,
                assistant_message="".join(progress.text),
                source_message_id=run.user_message_id,
            )
        )
    return usage


async def _safe_finalize(
    state: AppState, run: PreparedRun, progress: _Progress, status: MessageStatus, started: float
) -> ev.Usage | None:
    try:
        return await _finalize(state, run, progress, status, started)
    except Exception:
        log.exception(
            "could not store the assistant message", extra={"message_id": str(run.message_id)}
        )
        return None


def _storage_error(run: PreparedRun) -> ev.Error:
    return ev.Error(
        content="The reply could not be stored.",
        error_code="internal_error",
        conversation_id=run.conversation_id,
        message_id=run.message_id,
    )


async def execute(
    state: AppState, run: PreparedRun, control: RunControl | None = None
) -> AsyncIterator[ev.ChatEvent]:
    """Steps 6-8 as events: memory_context, typing, deltas and tools, usage, then done/error."""
    control = control or RunControl()
    progress = _Progress()
    started = time.perf_counter()
    yield ev.MemoryContext(memory_count=run.memory_count)
    yield ev.Typing()
    status = MessageStatus.complete
    failed = False
    try:
        if control.cancel_requested:
            raise asyncio.CancelledError
        control.in_model = True
        async for event in _stream_model(state, run, progress):
            yield event
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            task.uncancel()
        status = control.cancel_status
    except Exception:
        log.exception("model run failed", extra={"conversation_id": str(run.conversation_id)})
        status, failed = MessageStatus.failed, True
    finally:
        control.in_model = False
    usage = await _safe_finalize(state, run, progress, status, started)
    if failed:
        yield ev.Error(
            content="The model failed to produce a reply.",
            error_code="model_error",
            conversation_id=run.conversation_id,
            message_id=run.message_id,
        )
    elif usage is None:
        yield _storage_error(run)
    elif status is MessageStatus.complete:
        yield ev.UsageEvent(usage=usage)
        yield ev.Done(
            conversation_id=run.conversation_id,
            message_id=run.message_id,
            usage=usage,
            status=status,
        )
    else:
        yield ev.Done(
            conversation_id=run.conversation_id,
            message_id=run.message_id,
            usage=usage,
            status=status,
            content="Cancelled by client" if status is MessageStatus.cancelled else "Interrupted",
        )
