"""Long-term memories."""

from __future__ import annotations

import uuid
from array import array
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    Uuid,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Mapped, mapped_column

from agentstream.models.base import Base, Timestamped


class Vector(TypeDecorator[list[float]]):
    """An embedding as float32 little-endian bytes (sqlite-vec's own format; ``bytea`` on
    PostgreSQL, where pgvector's ``vector`` column, when present, is written through a cast
    and never read back). Not ``real[]``: asyncpg decodes a ``real[]`` into Python floats, ~16 µs
    of the worker's CPU per 256-dimension vector against under 1 µs for the bytes."""

    impl = LargeBinary
    cache_ok = True

    def process_bind_param(self, value: list[float] | None, dialect: Dialect) -> Any:
        if value is None:
            return value
        return array("f", value).tobytes()

    def process_result_value(self, value: Any, dialect: Dialect) -> list[float] | None:
        if value is None:
            return value
        floats = array("f")
        floats.frombytes(value)
        return floats.tolist()


class Memory(Timestamped, Base):
    __tablename__ = "memories"
    __table_args__ = (
        Index("ix_memories_team_agent_user", "team_id", "agent_id", "user_id"),
        Index("ix_memories_team_created", "team_id", "created_at"),
        # The background indexer finds what is not embedded with the current model by it.
        Index("ix_memories_embedding", "embedding_model", "embedding_dims"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    team_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"))
    agent_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("agents.id", ondelete="CASCADE"), default=None
    )
    # None means shared with the whole team.
    user_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), default=None
    )
    content: Mapped[str] = mapped_column(Text)
    importance: Mapped[int] = mapped_column(Integer, default=5)
    source_message_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("messages.id", ondelete="SET NULL"), default=None
    )
    last_used_at: Mapped[datetime | None] = mapped_column(default=None)
    deleted_at: Mapped[datetime | None] = mapped_column(default=None)
    # The vector (unit length), the embedding model that made it and its dimensions: vectors
    # of another model or dimension are never compared. Deferred: lists never load it.
    embedding: Mapped[list[float] | None] = mapped_column(Vector, default=None, deferred=True)
    embedding_model: Mapped[str | None] = mapped_column(String(200), default=None)
    embedding_dims: Mapped[int | None] = mapped_column(Integer, default=None)
