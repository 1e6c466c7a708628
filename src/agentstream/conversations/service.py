"""Conversations: owned by the team, the user who started them, and their agent."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from agentstream.auth.service import Principal
from agentstream.kit.errors import NotFound
from agentstream.kit.pagination import PageParams, paginate
from agentstream.kit.repository import scoped
from agentstream.models import Agent, Conversation, Message


async def get_owned(
    session: AsyncSession,
    principal: Principal,
    conversation_id: uuid.UUID,
    *,
    agent_id: uuid.UUID | None = None,
) -> Conversation:
    """The caller's conversation (with ``agent_id``, also that agent's), else 404."""
    stmt = scoped(
        Conversation,
        principal.team_id,
        Conversation.user_id == principal.user.id,
        Conversation.id == conversation_id,
    )
    if agent_id is not None:
        stmt = stmt.where(Conversation.agent_id == agent_id)
    conversation = await session.scalar(stmt)
    if conversation is None:
        raise NotFound("conversation")
    return conversation


async def list_conversations(
    session: AsyncSession, principal: Principal, params: PageParams, agent_slug: str | None
) -> tuple[list[Conversation], str | None, bool]:
    """A page of the caller's conversations, newest first, optionally for one agent."""
    stmt = scoped(Conversation, principal.team_id, Conversation.user_id == principal.user.id)
    if agent_slug is not None:
        agent_ids = scoped(Agent, principal.team_id, Agent.slug == agent_slug).with_only_columns(
            Agent.id
        )
        stmt = stmt.where(Conversation.agent_id.in_(agent_ids))
    rows, cursor, has_more = await paginate(session, stmt, Conversation, params)
    return list(rows), cursor, has_more


async def list_messages(
    session: AsyncSession, conversation: Conversation, params: PageParams
) -> tuple[Sequence[Message], str | None, bool]:
    """A page of a conversation's messages, oldest first."""
    stmt = scoped(Message, conversation.team_id, Message.conversation_id == conversation.id)
    return await paginate(session, stmt, Message, params, ascending=True)


async def delete_conversation(session: AsyncSession, conversation: Conversation) -> None:
    """Delete a conversation and its messages."""
    await session.execute(delete(Message).where(Message.conversation_id == conversation.id))
    await session.delete(conversation)


async def history(session: AsyncSession, conversation_id: uuid.UUID) -> Sequence[Message]:
    """All messages of a conversation, oldest first (for rebuilding model history)."""
    stmt = (
        select(Message)
        .where(Message.conversation_id == conversation_id)
        .order_by(Message.created_at, Message.id)
    )
    return (await session.scalars(stmt)).all()
