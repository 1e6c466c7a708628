"""Runs as their owner sees them (everyone else: ``run_not_found``)."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from agentstream import tenancy
from agentstream.conversations.turns import conversation_named
from agentstream.kit.errors import NotFound
from agentstream.models import LIVE_RUN_STATUSES, Agent, Conversation, RunRecord
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
        trace_id=record.trace_id,
        created_at=record.created_at,
        finished_at=record.finished_at,
    )


async def active_for_chat(
    session: AsyncSession, caller: Caller, agent: Agent, chat_id: str
) -> RunPublic | None:
    """The newest live (running or queued) run of the conversation a UI client's chat id names
    (the client-id rules of ``start_turn``), or ``None``; a conversation that is not the
    caller's with this agent is ``conversation_not_found``."""
    conversation_id = await conversation_named(session, caller, agent, chat_id)
    if conversation_id is None:
        return None
    owned = await session.scalar(
        tenancy.conversations(caller)
        .where(Conversation.id == conversation_id, Conversation.agent_id == agent.id)
        .with_only_columns(Conversation.id)
    )
    if owned is None:
        raise NotFound("conversation")
    run_id = await session.scalar(
        tenancy.runs(caller)
        .where(RunRecord.conversation_id == owned, RunRecord.status.in_(LIVE_RUN_STATUSES))
        .order_by(RunRecord.created_at.desc())
        .limit(1)
        .with_only_columns(RunRecord.id)
    )
    return None if run_id is None else await get_owned(session, caller, run_id)
