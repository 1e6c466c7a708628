"""Runs as their owner sees them (everyone else: ``run_not_found``)."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from agentstream import tenancy
from agentstream.kit.errors import NotFound
from agentstream.models import Agent, RunRecord
from agentstream.runs.schemas import RunPublic
from agentstream.tenancy import Caller


async def get_owned(session: AsyncSession, caller: Caller, run_id: uuid.UUID) -> RunPublic:
    """The caller's run as stored, else ``run_not_found`` (whoever else asks)."""
    row = (
        await session.execute(
            tenancy.runs(caller)
            .where(RunRecord.id == run_id)
            .join(Agent, Agent.id == RunRecord.agent_id)
            .add_columns(Agent.slug)
        )
    ).one_or_none()
    if row is None:
        raise NotFound("run")
    record, slug = row
    return RunPublic(
        id=record.id,
        conversation_id=record.conversation_id,
        agent=slug,
        status=record.status,
        last_seq=record.last_seq,
        created_at=record.created_at,
        finished_at=record.finished_at,
    )
