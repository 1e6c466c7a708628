"""Turn persistence: the rows a chat turn writes, from the user message to the stored reply.

A turn starts with the user message, an assistant placeholder (status ``interrupted``) and
its run (``running``), so a crash leaves the turn visible; while the reply streams its text is
checkpointed into the placeholder (each checkpoint appends what is new); when it ends, the
final state, the run's and the usage row are written in one transaction, which may be written
again (a retry) without harm.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, NamedTuple, Protocol

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from agentstream import tenancy
from agentstream.kit.errors import NotFound
from agentstream.models import (
    Approval,
    ApprovalStatus,
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

log = logging.getLogger("agentstream.turns")


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
    # A paused reply's calls that wait for approval (``approval_id``, ``tool_call_id``,
    # ``tool_name``, ``tool_args``): stored as pending approvals with the reply.
    approvals: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class Draft:
    """A reply's whole text and tool calls so far."""

    run_id: uuid.UUID
    content: str
    tool_calls: list[dict[str, Any]]


class Checkpoint(NamedTuple):
    """What changed in a streaming reply since its last checkpoint: ``text`` follows the
    stored text (or, with ``rewrite``, replaces it); ``tool_calls``, when they changed. (A
    tuple: a checkpoint makes one per streaming reply each second.)"""

    run_id: uuid.UUID
    text: str
    rewrite: bool = False
    tool_calls: list[dict[str, Any]] | None = None


async def _continued(
    session: AsyncSession, caller: Caller, agent: AgentRef, conversation_id: uuid.UUID
) -> Sequence[Message]:
    """Touch the caller's conversation with this agent and return its messages, else 404."""
    owned = tenancy.conversations(caller).where(
        Conversation.id == conversation_id, Conversation.agent_id == agent.id
    )
    touched = await session.scalar(
        update(Conversation)
        .where(Conversation.id.in_(owned.with_only_columns(Conversation.id)))
        .values(updated_at=utcnow())
        .returning(Conversation.id)
        .execution_options(synchronize_session=False)
    )
    if touched is None:
        raise NotFound("conversation")
    previous = await session.scalars(
        tenancy.messages(caller, conversation_id).order_by(Message.created_at, Message.id)
    )
    return previous.all()


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


# Decides, once the conversation is known to be the caller's, how a continued conversation's
# new run starts (``running``, or ``queued`` behind a busy one), or refuses the turn by raising.
Admit = Callable[[AsyncSession, uuid.UUID], Awaitable[RunStatus]]


# A turn's rows are written with these, built once, on the session's connection: Core, not the
# ORM's unit of work (nothing is loaded, kept or flushed).
_INSERT_CONVERSATION = insert(Conversation)
_INSERT_MESSAGES = insert(Message)
_INSERT_RUN = insert(RunRecord)
_INSERT_APPROVALS = insert(Approval)


async def start_turn(
    session: AsyncSession,
    caller: Caller,
    agent: AgentRef,
    text: str,
    conversation_id: uuid.UUID | None,
    worker_id: str,
    client_id: str | None = None,
    trace_id: str | None = None,
    admit: Admit | None = None,
) -> tuple[RunIdentity, Sequence[Message]]:
    """Load (or create) the caller's conversation with ``agent`` and write the new turn's rows
    (user message, assistant placeholder, and the run, owned by ``worker_id``, in the trace
    ``trace_id`` when tracing is on).

    Without ``conversation_id``, a UI client's ``client_id`` names the conversation: continued
    when found, else created with it. ``admit`` gives a continued conversation's run its status
    (chat/multitask.py). Returns the run's identity and the conversation's earlier messages.
    """
    previous: Sequence[Message] = []
    if conversation_id is None and client_id is not None:
        conversation_id = await conversation_named(session, caller, agent, client_id)
    connection = await session.connection()
    status = RunStatus.running
    if conversation_id is not None:
        previous = await _continued(session, caller, agent, conversation_id)
        if admit is not None:
            status = await admit(session, conversation_id)
    else:
        conversation_id = uuid.uuid4()
        await connection.execute(
            _INSERT_CONVERSATION,
            {
                "id": conversation_id,
                "team_id": caller.team_id,
                "agent_id": agent.id,
                "user_id": caller.user_id,
                "title": text[:80],
                "client_id": client_id,
            },
        )
    # Ordered timestamps, so the assistant message always sorts after the user's.
    now = utcnow()
    user_message_id, run_id = uuid.uuid4(), uuid.uuid4()
    common = {"team_id": caller.team_id, "conversation_id": conversation_id}
    await connection.execute(
        _INSERT_MESSAGES,
        [
            common
            | {
                "id": user_message_id,
                "role": MessageRole.user,
                "status": MessageStatus.complete,
                "model": None,
                "content": text,
                "created_at": now,
            },
            common
            | {
                "id": run_id,
                "role": MessageRole.assistant,
                "status": MessageStatus.interrupted,
                "model": agent.model,
                "content": "",
                "created_at": now + timedelta(microseconds=1),
            },
        ],
    )
    await connection.execute(
        _INSERT_RUN,
        {
            "id": run_id,
            "team_id": caller.team_id,
            "user_id": caller.user_id,
            "agent_id": agent.id,
            "conversation_id": conversation_id,
            "worker_id": worker_id,
            "trace_id": trace_id,
            "status": status,
        },
    )
    identity = RunIdentity(
        run_id=run_id,
        team_id=caller.team_id,
        user_id=caller.user_id,
        agent_id=agent.id,
        agent_slug=agent.slug,
        model=agent.model,
        conversation_id=conversation_id,
        user_message_id=user_message_id,
    )
    return identity, previous


# A checkpoint costs what changed: the new text is appended in the database (``||`` on both
# backends), the tool calls are written only when they changed. The append, one row per
# streaming reply each second, goes to the driver as it is: SQLAlchemy's processing of each
# row's parameters cost ~10 µs, more than the rest of the checkpoint.
_APPEND_TEXT = {
    "sqlite": "UPDATE messages SET content = content || ? WHERE id = ?",
    "postgresql": "UPDATE messages SET content = content || $1 WHERE id = $2",
}
_SET_TEXT = (
    update(Message).where(Message.id == bindparam("run_id")).values(content=bindparam("text"))
)
_SET_TOOL_CALLS = (
    update(Message)
    .where(Message.id == bindparam("run_id"))
    .values(tool_calls=bindparam("calls", type_=Message.tool_calls.type))
)


async def save_checkpoints(connection: AsyncConnection, checkpoints: Sequence[Checkpoint]) -> None:
    """Store what changed in replies still streaming (a statement per kind of change, each
    for every reply it concerns). A reply whose row is gone (its conversation was deleted)
    matches nothing."""
    dialect = connection.dialect.name
    # How the dialect stores a UUID (``Uuid``: native on PostgreSQL, 32 hex digits on SQLite).
    native = dialect == "postgresql"
    appends = [
        (c.text, c.run_id if native else c.run_id.hex)
        for c in checkpoints
        if c.text and not c.rewrite
    ]
    if appends:
        await connection.exec_driver_sql(_APPEND_TEXT[dialect], appends)
    rewrites = [{"run_id": c.run_id, "text": c.text} for c in checkpoints if c.rewrite]
    if rewrites:
        await connection.execute(_SET_TEXT, rewrites)
    calls = [
        {"run_id": c.run_id, "calls": c.tool_calls} for c in checkpoints if c.tool_calls is not None
    ]
    if calls:
        await connection.execute(_SET_TOOL_CALLS, calls)


# The final write, built once: the reply, its run and the usage row are three statements run
# on the session's connection, not through the ORM (no objects are loaded or kept).
_STORE_REPLY = (
    update(Message)
    .where(Message.id == bindparam("run_id"))
    .values(
        content=bindparam("reply"),
        status=bindparam("reply_status"),
        tool_calls=bindparam("reply_tool_calls"),
        usage=bindparam("reply_usage"),
    )
)
_END_RUN = (
    update(RunRecord)
    .where(RunRecord.id == bindparam("run_id"))
    .values(
        status=bindparam("run_status"),
        last_seq=bindparam("run_last_seq"),
        finished_at=bindparam("run_finished_at"),
    )
)


async def finish_turn(session: AsyncSession, run: RunIdentity, outcome: TurnOutcome) -> None:
    """Store the reply's final state in its placeholder and record the run's usage (once: a
    retry of this write changes nothing more). If the conversation was deleted while the reply
    streamed, only the usage is recorded, without the conversation."""
    connection = await session.connection()
    stored = await connection.execute(
        _STORE_REPLY,
        {
            "run_id": run.run_id,
            "reply": outcome.content,
            "reply_status": outcome.status,
            "reply_tool_calls": outcome.tool_calls,
            "reply_usage": outcome.usage,
        },
    )
    await connection.execute(
        _END_RUN,
        {
            "run_id": run.run_id,
            "run_status": RunStatus(outcome.status),
            "run_last_seq": outcome.last_seq,
            "run_finished_at": utcnow(),
        },
    )
    kept = stored.rowcount > 0
    if kept and outcome.approvals:
        await _store_approvals(connection, run, outcome.approvals)
    if not kept:
        log.info(
            "the conversation was deleted while its reply streamed; usage recorded without it",
            extra={"message_id": str(run.run_id)},
        )
    await record_usage(
        connection,
        run,
        conversation_id=run.conversation_id if kept else None,
        model=run.model,
        input_tokens=outcome.input_tokens,
        output_tokens=outcome.output_tokens,
        duration_ms=outcome.duration_ms,
        status=outcome.status,
    )


async def _store_approvals(
    connection: AsyncConnection, run: RunIdentity, approvals: list[dict[str, Any]]
) -> None:
    """A paused reply's pending approvals (those not stored yet: the final write may be a
    retry of one that committed)."""
    ids = [uuid.UUID(str(a["approval_id"])) for a in approvals]
    stored = set(
        (await connection.execute(select(Approval.id).where(Approval.id.in_(ids)))).scalars()
    )
    rows = [
        {
            "id": approval_id,
            "team_id": run.team_id,
            "user_id": run.user_id,
            "run_id": run.run_id,
            "message_id": run.run_id,
            "conversation_id": run.conversation_id,
            "tool_call_id": a["tool_call_id"],
            "tool_name": a["tool_name"],
            "tool_args": a["tool_args"],
            "status": ApprovalStatus.pending,
            "created_at": utcnow(),
        }
        for approval_id, a in zip(ids, approvals, strict=True)
        if approval_id not in stored
    ]
    if rows:
        await connection.execute(_INSERT_APPROVALS, rows)
