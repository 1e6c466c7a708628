"""Conversations, their messages, and runs (one assistant reply in the making)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    Uuid,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from agentstream.models.base import (
    Base,
    MessageRole,
    MessageStatus,
    RunStatus,
    Timestamped,
    enum_type,
    utcnow,
)


class Conversation(Timestamped, Base):
    __tablename__ = "conversations"
    __table_args__ = (
        Index("ix_conversations_team_user_updated", "team_id", "user_id", "updated_at"),
        UniqueConstraint("user_id", "agent_id", "client_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    team_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"))
    agent_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("agents.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    title: Mapped[str] = mapped_column(String(200), default="")
    # A UI client's own chat/thread id (not a UUID of ours), unique per user and agent.
    client_id: Mapped[str | None] = mapped_column(String(200), default=None)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Message(Timestamped, Base):
    __tablename__ = "messages"
    __table_args__ = (Index("ix_messages_conversation_created", "conversation_id", "created_at"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    team_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"))
    conversation_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE")
    )
    role: Mapped[MessageRole] = mapped_column(enum_type(MessageRole))
    content: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[MessageStatus] = mapped_column(
        enum_type(MessageStatus, 32), default=MessageStatus.complete
    )
    tool_calls: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    usage: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    model: Mapped[str | None] = mapped_column(String(200), default=None)


class RunRecord(Timestamped, Base):
    """A run: one assistant reply in the making. Its id is the assistant message's id."""

    __tablename__ = "runs"
    __table_args__ = (
        Index("ix_runs_conversation_status", "conversation_id", "status"),
        Index("ix_runs_status_worker", "status", "worker_id"),
        # A conversation runs one turn at a time, whichever worker starts it: a second run
        # row claiming ``running`` fails to insert (chat/multitask.py, docs/architecture.md).
        Index(
            "ux_runs_conversation_running",
            "conversation_id",
            unique=True,
            sqlite_where=text("status = 'running'"),
            postgresql_where=text("status = 'running'"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True
    )
    team_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"))
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    agent_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"))
    conversation_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE")
    )
    status: Mapped[RunStatus] = mapped_column(enum_type(RunStatus, 32), default=RunStatus.running)
    last_seq: Mapped[int] = mapped_column(Integer, default=0)
    # The worker process running it; a run whose worker is gone is interrupted by another.
    worker_id: Mapped[str] = mapped_column(String(64))
    # The run's OpenTelemetry trace (32 hex digits) when tracing is on.
    trace_id: Mapped[str | None] = mapped_column(String(32), default=None)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)
