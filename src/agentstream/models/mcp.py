"""MCP servers a team registered for its agents' tools."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import JSON, ForeignKey, String, Text, UniqueConstraint, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from agentstream.models.base import Base, Timestamped, utcnow

# ``"never"``, ``"always"`` or the names of the server's tools that need approval.
ApprovalSetting = str | list[str]


class McpServer(Timestamped, Base):
    __tablename__ = "mcp_servers"
    __table_args__ = (UniqueConstraint("team_id", "name"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    team_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(32))
    url: Mapped[str] = mapped_column(String(2048))
    approval: Mapped[ApprovalSetting] = mapped_column(JSON, default="never")
    # The request headers (an Authorization, say) as a Fernet token (mcp_servers/secrets.py):
    # write-only through the API, never stored in plain text.
    headers_encrypted: Mapped[str | None] = mapped_column(Text, default=None)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
