"""Tenant scoping in one place: every query of a team-owned row goes through here."""

from __future__ import annotations

import uuid
from typing import Any, TypeVar

from sqlalchemy import Select, select

T = TypeVar("T")


def scoped(entity: type[T], team_id: uuid.UUID, *where: Any) -> Select[T]:
    """``SELECT entity WHERE team_id = :team_id AND ...`` — the only way to read team rows."""
    column: Any = entity.team_id  # type: ignore[attr-defined]
    return select(entity).where(column == team_id, *where)
