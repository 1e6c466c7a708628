"""The declarative base, the clock, column types and the enums every table shares."""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    DateTime,
    Enum,
    MetaData,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator


def utcnow() -> datetime:
    """Timezone-aware now, the only clock the models use."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is not None:
            value = value.astimezone(UTC)
            if dialect.name == "sqlite":
                value = value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value


class Base(DeclarativeBase):
    """Declarative base with a naming convention so migrations are stable."""

    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(column_0_label)s",
            "uq": "uq_%(table_name)s_%(column_0_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime(), dict[str, Any]: JSON}


class Role(enum.StrEnum):
    """Team roles, weakest first."""

    viewer = "viewer"
    member = "member"
    admin = "admin"
    owner = "owner"

    @property
    def rank(self) -> int:
        """Position in the hierarchy, for 'at least' comparisons."""
        return list(Role).index(self)


class AgentStatus(enum.StrEnum):
    """Whether an agent accepts chats."""

    active = "active"
    paused = "paused"
    archived = "archived"


class MessageRole(enum.StrEnum):
    """Author of a message."""

    user = "user"
    assistant = "assistant"


class MessageStatus(enum.StrEnum):
    """Final state of a message."""

    complete = "complete"
    cancelled = "cancelled"
    failed = "failed"
    interrupted = "interrupted"
    awaiting_approval = "awaiting_approval"  # paused: tool calls wait for the owner's decision


class ApprovalStatus(enum.StrEnum):
    """Where a tool call that needs approval is: waiting, or how it was decided."""

    pending = "pending"
    approved = "approved"
    denied = "denied"
    expired = "expired"  # not decided within AGENTSTREAM_APPROVAL_TTL_S: denied


class RunStatus(enum.StrEnum):
    """Where a run is: waiting for its conversation's turn, streaming, or the status its reply
    was stored with."""

    queued = "queued"
    running = "running"
    complete = "complete"
    cancelled = "cancelled"
    failed = "failed"
    interrupted = "interrupted"
    awaiting_approval = "awaiting_approval"

    @property
    def live(self) -> bool:
        """Whether the run has not ended: waiting for its turn or streaming."""
        return self in LIVE_RUN_STATUSES


LIVE_RUN_STATUSES = (RunStatus.queued, RunStatus.running)


def enum_type(cls: type[enum.Enum], length: int = 16) -> Enum:
    return Enum(
        cls, native_enum=False, length=length, values_callable=lambda e: [m.value for m in e]
    )


class Timestamped:
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
