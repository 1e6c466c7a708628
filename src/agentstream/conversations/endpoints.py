"""``/v1/conversations``: the caller's conversations and their messages."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, status

from agentstream.approvals.service import of_conversation
from agentstream.auth.deps import ViewerPrincipal
from agentstream.conversations import service
from agentstream.conversations.schemas import (
    ConversationDetail,
    ConversationPublic,
    MessagePublic,
)
from agentstream.kit.pagination import Page, PageDep
from agentstream.models import ApprovalStatus, Conversation
from agentstream.state import SessionDep, StateDep

router = APIRouter(prefix="/v1/conversations", tags=["conversations"])


async def owned_conversation(
    conversation_id: uuid.UUID, principal: ViewerPrincipal, session: SessionDep
) -> Conversation:
    """The caller's conversation named by the path, or 404."""
    return await service.get_owned(session, principal, conversation_id)


ConversationDep = Annotated[Conversation, Depends(owned_conversation)]


@router.get("", response_model=Page[ConversationPublic])
async def list_conversations(
    principal: ViewerPrincipal,
    session: SessionDep,
    page: PageDep,
    agent: Annotated[str | None, Query(max_length=64)] = None,
) -> Page[ConversationPublic]:
    """The caller's conversations, newest first; ``?agent=slug`` filters."""
    rows, cursor, has_more = await service.list_conversations(session, principal, page, agent)
    items = [ConversationPublic.model_validate(c) for c in rows]
    return Page(items=items, cursor=cursor, has_more=has_more)


@router.get("/{conversation_id}", response_model=ConversationDetail)
async def get_conversation(
    conversation: ConversationDep, principal: ViewerPrincipal, session: SessionDep, state: StateDep
) -> ConversationDetail:
    """One conversation, with its pending approvals and every decision made."""
    approvals = await of_conversation(
        session, principal, conversation.id, state.settings.approval_ttl_s
    )
    pending = [a for a in approvals if a.status is ApprovalStatus.pending]
    return ConversationDetail.model_validate(
        ConversationPublic.model_validate(conversation).model_dump()
        | {"pending_approvals": pending, "approvals": approvals}
    )


@router.delete("/{conversation_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_conversation(conversation: ConversationDep, session: SessionDep) -> None:
    """Delete a conversation with its messages."""
    await service.delete_conversation(session, conversation)


@router.get("/{conversation_id}/messages", response_model=Page[MessagePublic])
async def list_messages(
    conversation: ConversationDep, principal: ViewerPrincipal, session: SessionDep, page: PageDep
) -> Page[MessagePublic]:
    """A conversation's messages, oldest first."""
    rows, cursor, has_more = await service.list_messages(session, principal, conversation, page)
    return Page(
        items=[MessagePublic.model_validate(m) for m in rows], cursor=cursor, has_more=has_more
    )
