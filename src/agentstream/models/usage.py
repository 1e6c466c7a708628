"""Usage: one row per run (unique by run id), and its daily rollup (kept by a trigger, see
migration 0004)."""

from __future__ import annotations

import datetime
import uuid

from sqlalchemy import (
    BigInteger,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column

from agentstream.models.base import Base, MessageStatus, Timestamped, enum_type


class UsageLog(Timestamped, Base):
    __tablename__ = "usage_logs"
    __table_args__ = (
        Index("ix_usage_logs_team_created", "team_id", "created_at"),
        # One row per run: a final write that is retried (its first commit's answer lost)
        # never bills a run twice (an index, not a constraint: SQLite adds it without
        # rebuilding the table, which would drop the rollup's trigger).
        Index("ix_usage_logs_run_id", "run_id", unique=True),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    team_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"))
    user_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    agent_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("agents.id", ondelete="SET NULL"), default=None
    )
    conversation_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("conversations.id", ondelete="SET NULL"), default=None
    )
    model: Mapped[str] = mapped_column(String(200))
    input_tokens: Mapped[int] = mapped_column(Integer, default=0)
    output_tokens: Mapped[int] = mapped_column(Integer, default=0)
    duration_ms: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[MessageStatus] = mapped_column(enum_type(MessageStatus, 32))
    # The run billed (its assistant message's id). No foreign key: usage outlives a deleted
    # conversation's runs. Rows from before runs had ids hold NULL.
    run_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, default=None)


class UsageDaily(Base):
    """Totals per UTC day, agent, user and model: what ``GET /v1/usage`` reads for whole days.

    A database trigger adds each inserted ``usage_logs`` row to its day's row in the same
    transaction (an upsert), so the rollup counts exactly the rows that exist, whoever
    inserts them, and a report reads a few rows per day instead of every run.
    """

    __tablename__ = "usage_daily"
    __table_args__ = (UniqueConstraint("team_id", "day", "agent_id", "user_id", "model"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    team_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"))
    day: Mapped[datetime.date] = mapped_column(Date)
    agent_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("agents.id", ondelete="SET NULL"), default=None
    )
    user_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    model: Mapped[str] = mapped_column(String(200))
    runs: Mapped[int] = mapped_column(BigInteger, default=0)
    input_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    output_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
