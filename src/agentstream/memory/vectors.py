"""Vector candidates for a query, over the caller's own readable memories only.

Three backends, detected once at start (``detect``):

- ``sqlite-vec``: SQLite with the sqlite-vec extension loaded (``db.create_engine``): cosine
  distance computed by the extension over the caller's newest ``memory_vector_scan`` rows.
- ``pgvector``: PostgreSQL whose ``embedding`` column is pgvector's ``vector`` (migration 0004
  creates it when the extension is installed): distance in the database over the caller's
  rows. Not exercised by the test suite on machines without pgvector.
- ``scan``: PostgreSQL without pgvector (a ``bytea`` column), or SQLite without the
  extension: the caller's newest ``memory_vector_scan`` vectors are read as bytes and scored
  in process with numpy. Older memories are still found by words.

Every backend compares only vectors of the query's model and dimensions, and only rows the
visibility rule (``tenancy.memory_visibility``) admits: the tenancy rule first, then rank.
"""

from __future__ import annotations

import logging
from array import array
from typing import Any, Literal

import numpy as np
from sqlalchemy import (
    REAL,
    BindParameter,
    ColumnElement,
    Float,
    LargeBinary,
    Select,
    bindparam,
    cast,
    func,
    literal,
    select,
    text,
    type_coerce,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.types import UserDefinedType

from agentstream.memory.embedder import QueryVector
from agentstream.models import Memory

log = logging.getLogger("agentstream.memory")

Backend = Literal["sqlite-vec", "pgvector", "scan"]


class _PgVector(UserDefinedType[Any]):
    """pgvector's ``vector``, only as a cast target (values travel as ``real[]``)."""

    cache_ok = True

    def get_col_spec(self, **kw: Any) -> str:
        return "vector"


async def detect(engine: AsyncEngine) -> Backend:
    """Which vector backend this database offers (logged once at start)."""
    async with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            try:
                await conn.execute(text("SELECT vec_version()"))
                backend: Backend = "sqlite-vec"
            except Exception:
                backend = "scan"
        else:
            column_type = await conn.scalar(
                text(
                    "SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
                    "WHERE attrelid = 'memories'::regclass AND attname = 'embedding'"
                )
            )
            backend = "pgvector" if column_type and column_type.startswith("vector") else "scan"
        await conn.rollback()
    log.info("memory vectors: %s", backend)
    return backend


def _comparable(visible: ColumnElement[bool], query: QueryVector) -> list[ColumnElement[bool]]:
    """Visible rows embedded by the query's model, with its dimensions: nothing else compares."""
    return [
        visible,
        Memory.embedding_model == query.model,
        Memory.embedding_dims == query.dimensions,
    ]


def _newest(visible: ColumnElement[bool], query: QueryVector, scan: int) -> Select[Any]:
    return (
        select(Memory.id)
        .where(*_comparable(visible, query))
        .order_by(Memory.created_at.desc())
        .limit(scan)
    )


async def vector_matches(
    session: AsyncSession,
    backend: Backend,
    visible: ColumnElement[bool],
    query: QueryVector,
    *,
    limit: int,
    scan: int,
    min_similarity: float,
) -> list[tuple[Memory, float]]:
    """Visible memories whose vector is at least ``min_similarity`` (cosine) from the query's,
    most similar first."""
    if backend == "scan":
        return await _scan(session, visible, query, limit, scan, min_similarity)
    if backend == "sqlite-vec":
        blob = array("f", query.values).tobytes()
        distance: ColumnElement[float] = func.vec_distance_cosine(Memory.embedding, literal(blob))
        candidates: ColumnElement[bool] = Memory.id.in_(
            _newest(visible, query, scan).scalar_subquery()
        )
    else:
        param: BindParameter[Any] = bindparam("query_vector", query.values, type_=ARRAY(REAL()))
        distance = Memory.embedding.op("<=>", return_type=Float())(
            cast(cast(param, ARRAY(REAL())), _PgVector())
        )
        candidates = visible
    similarity = (1 - distance).label("similarity")
    stmt = (
        select(Memory, similarity)
        .where(candidates, *_comparable(visible, query), similarity >= min_similarity)
        .order_by(similarity.desc())
        .limit(limit)
    )
    rows = await session.execute(stmt)
    return [(memory, float(score)) for memory, score in rows]


async def _scan(
    session: AsyncSession,
    visible: ColumnElement[bool],
    query: QueryVector,
    limit: int,
    scan: int,
    min_similarity: float,
) -> list[tuple[Memory, float]]:
    raw = type_coerce(Memory.embedding, LargeBinary).label("raw")  # bytes, not floats
    rows = (
        await session.execute(
            select(Memory.id, raw)
            .where(*_comparable(visible, query))
            .order_by(Memory.created_at.desc())
            .limit(scan)
        )
    ).all()
    if not rows:
        return []
    matrix = np.frombuffer(b"".join(row.raw for row in rows), dtype="<f4")
    matrix = matrix.reshape(len(rows), query.dimensions)
    scores = matrix @ np.asarray(query.values, dtype=np.float32)
    best = np.argsort(-scores)[:limit]
    picked = {rows[i].id: float(scores[i]) for i in best if scores[i] >= min_similarity}
    if not picked:
        return []
    memories = await session.scalars(select(Memory).where(Memory.id.in_(picked)))
    found = [(memory, picked[memory.id]) for memory in memories]
    return sorted(found, key=lambda pair: pair[1], reverse=True)
