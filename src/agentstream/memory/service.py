"""TEMPORARY interface stub — replaced by the memory feature."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from agentstream.models import Memory


async def retrieve(
    session: AsyncSession,
    *,
    team_id: uuid.UUID,
    agent_id: uuid.UUID,
    user_id: uuid.UUID,
    query: str,
    limit: int,
) -> list[Memory]:
    """Memories relevant to ``query`` visible to this agent and user."""
    return []
