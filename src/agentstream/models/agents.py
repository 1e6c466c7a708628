"""Agents."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    ForeignKey,
    String,
    Text,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column

from agentstream.models.base import AgentStatus, Base, Timestamped, enum_type, utcnow


class Agent(Timestamped, Base):
    __tablename__ = "agents"
    __table_args__ = (UniqueConstraint("team_id", "slug"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    team_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"))
    slug: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(100))
    instructions: Mapped[str] = mapped_column(Text, default="")
    model: Mapped[str] = mapped_column(String(200))
    # None means "every available skill"; [] means none.
    skills: Mapped[list[str] | None] = mapped_column(JSON, default=None)
    # Names of the team's MCP servers whose tools the agent may use (``<server>__<tool>``).
    mcp_servers: Mapped[list[str]] = mapped_column(JSON, default=list, server_default="[]")
    status: Mapped[AgentStatus] = mapped_column(enum_type(AgentStatus), default=AgentStatus.active)
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
