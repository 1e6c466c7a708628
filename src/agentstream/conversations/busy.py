"""Whether a conversation can start a turn now, and the turns waiting for it.

A conversation runs one turn at a time. A turn that may not start yet (``multitask``
``"interrupt"`` or ``"enqueue"``) is stored at once with its run ``queued``, and starts
(``running``) once every run ahead of it has ended, in the order the turns were stored. The
unique index ``ux_runs_conversation_running`` keeps that true when two workers try at the same
moment: the second insert (or claim) of a running run fails, and its caller looks again.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from agentstream import tenancy
from agentstream.approvals.service import supersede
from agentstream.models import (
    LIVE_RUN_STATUSES,
    Approval,
    ApprovalStatus,
    Message,
    RunRecord,
    RunStatus,
)
from agentstream.tenancy import Caller


@dataclass(frozen=True)
class Busy:
    """What keeps a conversation from starting a turn now."""

    # The live runs ahead: the running one (if any) first, then the queued ones in order.
    runs: tuple[uuid.UUID, ...] = ()
    # The pending approvals of a paused turn (human approval of tool calls fills these in).
    approval_ids: tuple[uuid.UUID, ...] = ()

    @property
    def run_id(self) -> uuid.UUID | None:
        """The run the conversation is busy with: the running one, else the first queued."""
        return self.runs[0] if self.runs else None

    @property
    def last(self) -> uuid.UUID | None:
        """The run a new turn waits behind: the last one ahead of it."""
        return self.runs[-1] if self.runs else None

    def details(self) -> dict[str, Any]:
        """The ``details`` of a ``conversation_busy`` error (and the fields of its event)."""
        if self.runs:
            return {"run_id": str(self.runs[0])}
        return {"approval_ids": [str(a) for a in self.approval_ids]}


async def busy_with(
    session: AsyncSession,
    caller: Caller,
    conversation_id: uuid.UUID,
    *,
    behind: uuid.UUID | None = None,
    approvals_since: datetime | None = None,
) -> Busy | None:
    """What the caller's conversation is busy with, else ``None``: the hook every new turn and
    every waiting turn asks. With ``behind`` (a queued run), only what is ahead of that run;
    with ``approvals_since``, also the pending approvals created since then (older ones have
    expired)."""
    rows = await session.execute(
        tenancy.runs(caller)
        .where(RunRecord.conversation_id == conversation_id)
        .where(RunRecord.status.in_(LIVE_RUN_STATUSES))
        .order_by(RunRecord.created_at, RunRecord.id)
        .with_only_columns(RunRecord.id, RunRecord.status)
    )
    running: list[uuid.UUID] = []
    queued: list[uuid.UUID] = []
    for run_id, status in rows:
        (running if status is RunStatus.running else queued).append(run_id)
    if behind in queued:
        queued = queued[: queued.index(behind)]
    ahead = tuple(running + queued)
    if ahead:
        return Busy(ahead)
    if approvals_since is None:
        return None
    pending = await session.scalars(
        tenancy.approvals(caller)
        .where(
            Approval.conversation_id == conversation_id,
            Approval.status == ApprovalStatus.pending,
            Approval.created_at > approvals_since,
        )
        .order_by(Approval.created_at, Approval.id)
        .with_only_columns(Approval.id)
    )
    approval_ids = tuple(pending)
    return Busy(approval_ids=approval_ids) if approval_ids else None


@dataclass(frozen=True)
class Claim:
    """What a queued run's attempt to start found."""

    started: bool
    busy: Busy | None = None  # what is still ahead (not started)
    previous: Sequence[Message] = ()  # the conversation before this turn (started)


async def claim_turn(
    session: AsyncSession,
    caller: Caller,
    run_id: uuid.UUID,
    conversation_id: uuid.UUID,
    user_message_id: uuid.UUID,
) -> Claim:
    """Start a queued run if nothing is ahead of it, returning the conversation's messages
    before its turn (the earlier turns have ended by now, so they are complete). Neither
    started nor busy means the run is no longer queued (something else ended it)."""
    busy = await busy_with(session, caller, conversation_id, behind=run_id)
    if busy is not None:
        return Claim(started=False, busy=busy)
    claimed = await session.scalar(
        update(RunRecord)
        .where(RunRecord.id == run_id, RunRecord.status == RunStatus.queued)
        .values(status=RunStatus.running)
        .returning(RunRecord.id)
    )
    if claimed is None:
        return Claim(started=False)
    # A turn that waited behind a run which then paused for approval takes the paused turn's
    # place: its calls are denied as superseded (SPEC "Busy conversations").
    await supersede(session, caller, conversation_id)
    messages = await session.scalars(
        tenancy.messages(caller, conversation_id).order_by(Message.created_at, Message.id)
    )
    previous: list[Message] = []
    for message in messages:
        if message.id == user_message_id:
            break
        previous.append(message)
    return Claim(started=True, previous=previous)
