"""Keyset (cursor) pagination over ``(created_at, id)``."""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Depends, Query
from pydantic import BaseModel
from sqlalchemy import Select, and_, or_
from sqlalchemy.ext.asyncio import AsyncSession

from agentstream.kit import jsonenc
from agentstream.kit.errors import ValidationFailed

T = TypeVar("T")
R = TypeVar("R")


class Page(BaseModel, Generic[T]):
    """A page of a list: ``cursor`` fetches the next one while ``has_more``."""

    items: list[T]
    cursor: str | None = None
    has_more: bool = False


@dataclass(frozen=True)
class PageParams:
    limit: int
    cursor: tuple[datetime, uuid.UUID] | None


def _decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        created, ident = jsonenc.loads(base64.urlsafe_b64decode(cursor.encode()))
        return datetime.fromisoformat(created), uuid.UUID(ident)
    except (ValueError, TypeError, binascii.Error) as exc:
        raise ValidationFailed("Invalid cursor.", details={"cursor": cursor}) from exc


def _encode_cursor(created: datetime, ident: uuid.UUID) -> str:
    return base64.urlsafe_b64encode(jsonenc.dumps([created.isoformat(), str(ident)])).decode()


async def page_params(
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> PageParams:
    """Validated ``?limit=&cursor=`` query parameters."""
    return PageParams(limit=limit, cursor=_decode_cursor(cursor) if cursor else None)


PageDep = Annotated[PageParams, Depends(page_params)]


async def paginate(
    session: AsyncSession,
    stmt: Select[R],
    entity: Any,
    params: PageParams,
    *,
    ascending: bool = False,
) -> tuple[Sequence[R], str | None, bool]:
    """Run ``stmt`` for one page ordered by ``entity.created_at, entity.id``."""
    created, ident = entity.created_at, entity.id
    if params.cursor is not None:
        c_created, c_id = params.cursor
        if ascending:
            after = or_(created > c_created, and_(created == c_created, ident > c_id))
        else:
            after = or_(created < c_created, and_(created == c_created, ident < c_id))
        stmt = stmt.where(after)
    order = (created.asc(), ident.asc()) if ascending else (created.desc(), ident.desc())
    rows = (await session.scalars(stmt.order_by(*order).limit(params.limit + 1))).all()
    has_more = len(rows) > params.limit
    rows = rows[: params.limit]
    cursor = None
    if has_more:
        last: Any = rows[-1]
        cursor = _encode_cursor(last.created_at, last.id)
    return rows, cursor, has_more
