"""TEMPORARY interface stub — replaced by the usage feature."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from agentstream.models import MessageStatus, UsageLog


async def record_usage(
    session: AsyncSession,
    *,
    team_id: uuid.UUID,
    user_id: uuid.UUID,
    agent_id: uuid.UUID,
    conversation_id: uuid.UUID,
    model: str,
    input_tokens: int,
    output_tokens: int,
    duration_ms: int,
    status: MessageStatus,
) -> None:
    """Add the usage row of one run."""
    session.add(
        UsageLog(
            team_id=team_id,
            user_id=user_id,
            agent_id=agent_id,
            conversation_id=conversation_id,
            model=model,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            duration_ms=duration_ms,
            status=status,
        )
    )
