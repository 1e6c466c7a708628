"""Human approval of tool calls: deciding a paused turn's calls and carrying the turn on.

A paused run's reply is stored ``awaiting_approval`` with one ``approvals`` row per call that
waits (conversations/turns.py writes them with the reply). Its owner decides every one of
them at once; the decisions and the continuation run's rows (an assistant placeholder and its
``running`` run, no new user message) are written in one transaction, so a turn is continued
exactly once: a second decision finds the rows decided (409), and the unique running-run index
keeps the conversation to one run at a time.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from agentstream import tenancy
from agentstream.approvals.resume import Decision, Resume
from agentstream.approvals.schemas import ApprovalPublic, DecisionIn
from agentstream.conversations.turns import AgentRef, RunIdentity
from agentstream.kit.errors import ApprovalAlreadyDecided, NotFound, ValidationFailed
from agentstream.models import (
    Approval,
    ApprovalStatus,
    Message,
    MessageRole,
    MessageStatus,
    RunRecord,
    RunStatus,
    utcnow,
)
from agentstream.tenancy import Caller

SUPERSEDED = "superseded"
EXPIRED = "expired"


def stale_before(ttl_s: float) -> datetime:
    """Approvals created before this have expired."""
    return utcnow() - timedelta(seconds=ttl_s)


@dataclass(frozen=True)
class Continuation:
    """A decided turn's continuation, written and ready to run."""

    identity: RunIdentity
    previous: Sequence[Message]  # the conversation up to the paused turn's user message
    resume: Resume
    prompt: str  # the paused turn's user message


def _public(row: Approval, ttl_s: float, now: datetime) -> ApprovalPublic:
    expires_at = row.created_at + timedelta(seconds=ttl_s)
    status = row.status
    decided_at, reason = row.decided_at, row.reason
    if status is ApprovalStatus.pending and expires_at <= now:
        status, decided_at, reason = ApprovalStatus.expired, expires_at, EXPIRED
    approved = None if status is ApprovalStatus.pending else status is ApprovalStatus.approved
    return ApprovalPublic(
        approval_id=row.id,
        run_id=row.run_id,
        message_id=row.message_id,
        tool_call_id=row.tool_call_id,
        tool_name=row.tool_name,
        tool_args=row.tool_args,
        status=status,
        approved=approved,
        decided_by=row.decided_by,
        decided_at=decided_at,
        reason=reason,
        created_at=row.created_at,
        expires_at=expires_at,
    )


async def of_conversation(
    session: AsyncSession, caller: Caller, conversation_id: uuid.UUID, ttl_s: float
) -> list[ApprovalPublic]:
    """Every tool call of the caller's conversation that waited for approval, oldest first,
    with its decision (an undecided one past its time reads ``expired``)."""
    rows = await session.scalars(
        tenancy.approvals(caller)
        .where(Approval.conversation_id == conversation_id)
        .order_by(Approval.created_at, Approval.id)
    )
    now = utcnow()
    return [_public(row, ttl_s, now) for row in rows]


async def supersede(
    session: AsyncSession, caller: Caller, conversation_id: uuid.UUID, reason: str = SUPERSEDED
) -> None:
    """Deny every pending approval of the conversation: a newer turn has taken its place."""
    await session.execute(
        update(Approval)
        .where(
            Approval.id.in_(
                tenancy.approvals(caller)
                .where(
                    Approval.conversation_id == conversation_id,
                    Approval.status == ApprovalStatus.pending,
                )
                .with_only_columns(Approval.id)
            )
        )
        .values(
            status=ApprovalStatus.denied,
            decided_by=caller.user_id,
            decided_at=utcnow(),
            reason=reason,
        )
        .execution_options(synchronize_session=False)
    )


def _check(
    rows: Sequence[Approval], decisions: Sequence[DecisionIn], paused_run: uuid.UUID | None
) -> Approval:
    """The decisions name the caller's approvals of one paused turn; returns one of them."""
    if len({d.approval_id for d in decisions}) != len(decisions):
        raise ValidationFailed("Each approval may be decided once per request.")
    if len(rows) != len(decisions) or (
        paused_run is not None and any(r.run_id != paused_run for r in rows)
    ):
        raise NotFound("approval")
    if len({r.run_id for r in rows}) != 1:
        raise ValidationFailed("Decisions must all be for the same paused turn.")
    return rows[0]


async def continue_turn(
    session: AsyncSession,
    caller: Caller,
    agent: AgentRef,
    decisions: Sequence[DecisionIn],
    *,
    worker_id: str,
    ttl_s: float,
    trace_id: str | None = None,
    paused_run: uuid.UUID | None = None,
) -> Continuation:
    """Record the caller's decisions on every call a paused turn waits on, and write the run
    that continues it. ``paused_run`` (``POST /v1/runs/{id}/approvals``) must be the turn's run.

    Raises ``approval_not_found`` (unknown, another user's, another agent's, another run's),
    ``approval_already_decided`` (decided or expired), ``validation_error`` (not every call of
    the turn decided)."""
    ids = [d.approval_id for d in decisions]
    rows = (
        await session.scalars(
            tenancy.approvals(caller).where(Approval.id.in_(ids)).with_for_update()
        )
    ).all()
    first = _check(rows, decisions, paused_run)
    run = await session.scalar(tenancy.runs(caller).where(RunRecord.id == first.run_id))
    if run is None or run.agent_id != agent.id:
        raise NotFound("approval")
    stale = stale_before(ttl_s)
    if any(r.status is not ApprovalStatus.pending or r.created_at <= stale for r in rows):
        raise ApprovalAlreadyDecided()
    waiting = set(
        (
            await session.scalars(
                select(Approval.id).where(
                    Approval.run_id == first.run_id, Approval.status == ApprovalStatus.pending
                )
            )
        ).all()
    )
    if not waiting <= set(ids):
        raise ValidationFailed(
            "Every tool call of the paused turn must be decided at once.",
            details={"approval_ids": sorted(str(a) for a in waiting)},
        )
    continuation = uuid.uuid4()
    now = utcnow()
    for decision in decisions:
        decided = await session.execute(
            update(Approval)
            .where(Approval.id == decision.approval_id, Approval.status == ApprovalStatus.pending)
            .values(
                status=ApprovalStatus.approved if decision.approved else ApprovalStatus.denied,
                decided_by=caller.user_id,
                decided_at=now,
                reason=decision.reason,
                continued_by=continuation,
            )
            .execution_options(synchronize_session=False)
        )
        if decided.rowcount != 1:  # type: ignore[attr-defined]
            raise ApprovalAlreadyDecided()
    return await _write_continuation(
        session, caller, agent, run, rows, decisions, continuation, worker_id, trace_id
    )


async def _write_continuation(
    session: AsyncSession,
    caller: Caller,
    agent: AgentRef,
    paused: RunRecord,
    rows: Sequence[Approval],
    decisions: Sequence[DecisionIn],
    run_id: uuid.UUID,
    worker_id: str,
    trace_id: str | None,
) -> Continuation:
    messages = (
        await session.scalars(
            tenancy.messages(caller, paused.conversation_id).order_by(
                Message.created_at, Message.id
            )
        )
    ).all()
    position = next(i for i, m in enumerate(messages) if m.id == paused.id)
    paused_message = messages[position]
    previous = messages[:position]
    user = next((m for m in reversed(previous) if m.role is MessageRole.user), None)
    if user is None or paused_message.status is not MessageStatus.awaiting_approval:
        raise ApprovalAlreadyDecided()
    # After every message of the conversation, so the continuation reads after the pause.
    created = max(utcnow(), messages[-1].created_at + timedelta(microseconds=1))
    await session.execute(
        insert(Message).values(
            id=run_id,
            team_id=caller.team_id,
            conversation_id=paused.conversation_id,
            role=MessageRole.assistant,
            status=MessageStatus.interrupted,
            model=agent.model,
            content="",
            tool_calls=[],
            created_at=created,
        )
    )
    await session.execute(
        insert(RunRecord).values(
            id=run_id,
            team_id=caller.team_id,
            user_id=caller.user_id,
            agent_id=agent.id,
            conversation_id=paused.conversation_id,
            worker_id=worker_id,
            trace_id=trace_id,
            status=RunStatus.running,
            last_seq=0,
            created_at=created,
        )
    )
    by_id = {r.id: r for r in rows}
    identity = RunIdentity(
        run_id=run_id,
        team_id=caller.team_id,
        user_id=caller.user_id,
        agent_id=agent.id,
        agent_slug=agent.slug,
        model=agent.model,
        conversation_id=paused.conversation_id,
        user_message_id=user.id,
    )
    resume = Resume(
        text=paused_message.content,
        calls=list(paused_message.tool_calls),
        decisions={
            by_id[d.approval_id].tool_call_id: Decision(d.approved, d.reason) for d in decisions
        },
    )
    return Continuation(identity, previous, resume, user.content)
