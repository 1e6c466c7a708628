"""Conversations: owned by the team, the user who started them, and their agent."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from agentstream import tenancy
from agentstream.kit.errors import NotFound
from agentstream.kit.pagination import PageParams, paginate
from agentstream.models import Agent, Conversation, Message
from agentstream.tenancy import Caller


async def get_owned(
    session: AsyncSession, caller: Caller, conversation_id: uuid.UUID
) -> Conversation:
    """The caller's conversation, else ``conversation_not_found``."""
    conversation = await session.scalar(
        tenancy.conversations(caller).where(Conversation.id == conversation_id)
    )
    if conversation is None:
        raise NotFound("conversation")
    return conversation


async def list_conversations(
    session: AsyncSession, caller: Caller, params: PageParams, agent_slug: str | None
) -> tuple[list[Conversation], str | None, bool]:
    """A page of the caller's conversations, newest first, optionally for one agent."""
    stmt = tenancy.conversations(caller)
    if agent_slug is not None:
        agent_ids = tenancy.agents(caller).where(Agent.slug == agent_slug)
        stmt = stmt.where(Conversation.agent_id.in_(agent_ids.with_only_columns(Agent.id)))
    rows, cursor, has_more = await paginate(session, stmt, Conversation, params)
    return list(rows), cursor, has_more


async def list_messages(
    session: AsyncSession, caller: Caller, conversation: Conversation, params: PageParams
) -> tuple[Sequence[Message], str | None, bool]:
    """A page of one of the caller's conversations' messages, oldest first."""
    stmt = tenancy.messages(caller, conversation.id)
    return await paginate(session, stmt, Message, params, ascending=True)


async def delete_conversation(session: AsyncSession, conversation: Conversation) -> None:
    """Delete a conversation (already resolved for the caller) and its messages."""
    await session.execute(delete(Message).where(Message.conversation_id == conversation.id))
    await session.delete(conversation)
