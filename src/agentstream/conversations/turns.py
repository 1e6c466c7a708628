"""Turn persistence: the rows a chat turn writes, from the user message to the stored reply.

A turn starts with the user message, an assistant placeholder (status ``interrupted``) and
its run (``running``), so a crash leaves the turn visible; while the reply streams its text is
checkpointed into the placeholder; when it ends, the final state, the run's and the usage row
are written in one transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from agentstream import tenancy
from agentstream.kit.errors import NotFound
from agentstream.models import (
    Conversation,
    Message,
    MessageRole,
    MessageStatus,
    RunRecord,
    RunStatus,
    utcnow,
)
from agentstream.tenancy import Caller
from agentstream.usage.service import record_usage


class AgentRef(Protocol):
    """The agent a turn is with (a row or a cached copy)."""

    @property
    def id(self) -> uuid.UUID: ...

    @property
    def slug(self) -> str: ...

    @property
    def model(self) -> str: ...


@dataclass(frozen=True)
class RunIdentity:
    """Whose a run is and which rows it writes. Its id is the assistant message's id."""

    run_id: uuid.UUID
    team_id: uuid.UUID
    user_id: uuid.UUID
    agent_id: uuid.UUID
    agent_slug: str
    model: str
    conversation_id: uuid.UUID
    user_message_id: uuid.UUID


@dataclass(frozen=True)
class TurnOutcome:
    """How a reply ended: what to store in the placeholder and the usage row."""

    content: str
    status: MessageStatus
    tool_calls: list[dict[str, Any]]
    usage: dict[str, Any]
    input_tokens: int
    output_tokens: int
    duration_ms: int
    last_seq: int


@dataclass(frozen=True)
class Draft:
    """A reply's text so far, to checkpoint."""

    run_id: uuid.UUID
    content: str
    tool_calls: list[dict[str, Any]]


async def _continued(
    session: AsyncSession, caller: Caller, agent: AgentRef, conversation_id: uuid.UUID
) -> tuple[Conversation, Sequence[Message]]:
    """The caller's conversation with this agent and its messages, else 404."""
    conversation = await session.scalar(
        tenancy.conversations(caller).where(
            Conversation.id == conversation_id, Conversation.agent_id == agent.id
        )
    )
    if conversation is None:
        raise NotFound("conversation")
    conversation.updated_at = utcnow()
    previous = await session.scalars(
        tenancy.messages(caller, conversation.id).order_by(Message.created_at, Message.id)
    )
    return conversation, previous.all()


async def conversation_named(
    session: AsyncSession, caller: Caller, agent: AgentRef, client_id: str
) -> uuid.UUID | None:
    """The conversation a UI client's chat/thread id names, if any.

    A UUID naming an existing conversation is that conversation (``_continued`` then 404s it if
    it is not the caller's with this agent: the UI SDKs may mint UUIDs, but another user's id
    must never silently start a fresh conversation); anything else is the caller's own
    ``client_id`` with this agent.
    """
    try:
        as_uuid: uuid.UUID | None = uuid.UUID(client_id)
    except ValueError:
        as_uuid = None
    # Unscoped on purpose: only whether the id exists at all decides which rule applies.
    if as_uuid is not None and await session.scalar(
        select(Conversation.id).where(Conversation.id == as_uuid)
    ):
        return as_uuid
    found: uuid.UUID | None = await session.scalar(
        tenancy.conversations(caller)
        .where(Conversation.agent_id == agent.id, Conversation.client_id == client_id)
        .with_only_columns(Conversation.id)
    )
    return found


async def start_turn(
    session: AsyncSession,
    caller: Caller,
    agent: AgentRef,
    text: str,
    conversation_id: uuid.UUID | None,
    worker_id: str,
    client_id: str | None = None,
) -> tuple[RunIdentity, Sequence[Message]]:
    """Load (or create) the caller's conversation with ``agent`` and write the new turn's rows
    (user message, assistant placeholder, and the run, owned by ``worker_id``).

    Without ``conversation_id``, a UI client's ``client_id`` names the conversation: continued
    when found, else created with it. Returns the run's identity and the conversation's earlier
    messages.
    """
    previous: Sequence[Message] = []
    if conversation_id is None and client_id is not None:
        conversation_id = await conversation_named(session, caller, agent, client_id)
    if conversation_id is not None:
        conversation, previous = await _continued(session, caller, agent, conversation_id)
    else:
        conversation = Conversation(
            id=uuid.uuid4(),
            team_id=caller.team_id,
            agent_id=agent.id,
            user_id=caller.user_id,
            title=text[:80],
            client_id=client_id,
        )
        session.add(conversation)
    # Explicit ids, ordered timestamps and the same columns in both messages: one flush (the
    # unit of work orders the tables by their foreign keys) with one INSERT for both messages,
    # and the assistant always sorts after.
    now = utcnow()
    common = {"team_id": caller.team_id, "conversation_id": conversation.id}
    user = Message(
        id=uuid.uuid4(),
        role=MessageRole.user,
        status=MessageStatus.complete,
        model=None,
        content=text,
        created_at=now,
        **common,
    )
    assistant = Message(
        id=uuid.uuid4(),
        role=MessageRole.assistant,
        status=MessageStatus.interrupted,
        model=agent.model,
        content="",
        created_at=now + timedelta(microseconds=1),
        **common,
    )
    run = RunRecord(
        id=assistant.id,
        team_id=caller.team_id,
        user_id=caller.user_id,
        agent_id=agent.id,
        conversation_id=conversation.id,
        worker_id=worker_id,
    )
    session.add_all([user, assistant, run])
    await session.flush()
    # In field order: run (= assistant message), team, user, agent, slug, model, conversation,
    # user message.
    ids = (assistant.id, caller.team_id, caller.user_id, agent.id)
    identity = RunIdentity(*ids, agent.slug, agent.model, conversation.id, user.id)
    return identity, previous


async def save_drafts(session: AsyncSession, drafts: Sequence[Draft]) -> None:
    """Checkpoint the text of replies still streaming (one statement for all of them)."""
    if drafts:
        await session.execute(
            update(Message),
            [{"id": d.run_id, "content": d.content, "tool_calls": d.tool_calls} for d in drafts],
        )


async def finish_turn(session: AsyncSession, run: RunIdentity, outcome: TurnOutcome) -> None:
    """Store the reply's final state in its placeholder and record the run's usage."""
    await session.execute(
        update(Message)
        .where(Message.id == run.run_id)
        .values(
            content=outcome.content,
            status=outcome.status,
            tool_calls=outcome.tool_calls,
            usage=outcome.usage,
        )
    )
    await session.execute(
        update(RunRecord)
        .where(RunRecord.id == run.run_id)
        .values(status=RunStatus(outcome.status), last_seq=outcome.last_seq, finished_at=utcnow())
    )
    await record_usage(
        session,
        run,
        model=run.model,
        input_tokens=outcome.input_tokens,
        output_tokens=outcome.output_tokens,
        duration_ms=outcome.duration_ms,
        status=outcome.status,
    )


async def running_runs(
    session: AsyncSession, *, exclude_worker: str
) -> list[tuple[uuid.UUID, str]]:
    """``(run id, worker id)`` of every run still marked running by another worker."""
    rows = await session.execute(
        select(RunRecord.id, RunRecord.worker_id).where(
            RunRecord.status == RunStatus.running, RunRecord.worker_id != exclude_worker
        )
    )
    return [(run_id, worker) for run_id, worker in rows]


async def interrupt_run(
    session: AsyncSession, run_id: uuid.UUID, recovered: Draft, last_seq: int
) -> uuid.UUID | None:
    """Mark a run whose worker died ``interrupted`` (once: the first caller claims it), keeping
    the longer of its checkpoint and ``recovered`` text. Returns its conversation id if claimed.
    """
    claimed: uuid.UUID | None = await session.scalar(
        update(RunRecord)
        .where(RunRecord.id == run_id, RunRecord.status == RunStatus.running)
        .values(status=RunStatus.interrupted, finished_at=utcnow(), last_seq=last_seq)
        .returning(RunRecord.conversation_id)
    )
    if claimed is None:
        return None
    stored = await session.scalar(select(Message.content).where(Message.id == run_id))
    if stored is not None and len(recovered.content) > len(stored):
        await save_drafts(session, [recovered])
    return claimed
