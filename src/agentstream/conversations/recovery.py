"""Runs whose worker is gone: finding them and marking them ``interrupted`` (the reaper's and
start-up's half of turn persistence, beside ``turns``)."""

from __future__ import annotations

import uuid

from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from agentstream.conversations.turns import Draft
from agentstream.kit.text import storable, storable_json
from agentstream.models import LIVE_RUN_STATUSES, Message, RunRecord, RunStatus, utcnow


async def running_runs(
    session: AsyncSession, *, exclude_worker: str
) -> list[tuple[uuid.UUID, str]]:
    """``(run id, worker id)`` of every run another worker holds (running, or queued for its
    conversation's turn)."""
    rows = await session.execute(
        select(RunRecord.id, RunRecord.worker_id).where(
            RunRecord.status.in_(LIVE_RUN_STATUSES), RunRecord.worker_id != exclude_worker
        )
    )
    return [(run_id, worker) for run_id, worker in rows]


_SET_DRAFT = (
    update(Message)
    .where(Message.id == bindparam("run_id"))
    .values(content=bindparam("text"), tool_calls=bindparam("calls", type_=Message.tool_calls.type))
)


async def interrupt_run(
    session: AsyncSession, run_id: uuid.UUID, recovered: Draft, last_seq: int
) -> uuid.UUID | None:
    """Mark a run whose worker died ``interrupted`` (once: the first caller claims it), keeping
    the longer of its checkpoint and ``recovered`` text (made storable: it may come from an
    event log written before text was). Returns its conversation id if claimed.
    """
    claimed: uuid.UUID | None = await session.scalar(
        update(RunRecord)
        .where(RunRecord.id == run_id, RunRecord.status.in_(LIVE_RUN_STATUSES))
        .values(status=RunStatus.interrupted, finished_at=utcnow(), last_seq=last_seq)
        .returning(RunRecord.conversation_id)
    )
    if claimed is None:
        return None
    stored = await session.scalar(select(Message.content).where(Message.id == run_id))
    if stored is not None and len(recovered.content) > len(stored):
        connection = await session.connection()
        await connection.execute(
            _SET_DRAFT,
            {
                "run_id": run_id,
                "text": storable(recovered.content),
                "calls": storable_json(recovered.tool_calls),
            },
        )
    return claimed
