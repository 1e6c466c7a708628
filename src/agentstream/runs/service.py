"""Runs as their owner sees them: status, cancel, and where to read their events from."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from agentstream import tenancy
from agentstream.kit.errors import NotFound, RunEventsExpired
from agentstream.models import Agent, RunRecord, RunStatus
from agentstream.runs.registry import Run, RunRegistry
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


def live(run: RunPublic, registry: RunRegistry) -> RunPublic:
    """The stored run, with this worker's live count of its events while it streams."""
    local = registry.get(run.id)
    if local is None or run.status is not RunStatus.running:
        return run
    return run.model_copy(update={"last_seq": local.last_seq})


def cancel(run: RunPublic, registry: RunRegistry) -> None:
    """Stop the run if it is still streaming (a no-op for a finished one)."""
    local = registry.get(run.id)
    if local is not None and not local.finished:
        local.cancel()


def readable(run: RunPublic, registry: RunRegistry) -> Run:
    """The run whose events can be replayed, or ``run_events_expired``."""
    local = registry.get(run.id)
    if local is None:
        raise RunEventsExpired()
    return local
