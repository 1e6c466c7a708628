"""Full-text candidates for a query: SQLite FTS5 (bm25) or PostgreSQL ``ts_rank``."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import ColumnElement, Float, String, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from agentstream.models import Memory

_WORD = re.compile(r"\w+", re.UNICODE)
MAX_TERMS = 24


def query_terms(query: str) -> list[str]:
    """The words of a message, deduplicated; punctuation and search syntax are dropped."""
    seen: dict[str, None] = {}
    for word in _WORD.findall(query.lower()):
        if len(word) > 1:
            seen.setdefault(word, None)
    return list(seen)[:MAX_TERMS]


async def text_matches(
    session: AsyncSession, visible: ColumnElement[bool], query: str, limit: int
) -> list[tuple[Memory, float]]:
    """Visible memories matching any word of ``query`` with a relevance (higher is better)."""
    terms = query_terms(query)
    if not terms:
        return []
    if session.get_bind().dialect.name == "sqlite":
        # Every term is quoted, so user text can never be FTS5 syntax.
        fts = (
            text(
                "SELECT memory_id, bm25(memories_fts) AS rank FROM memories_fts "
                "WHERE memories_fts MATCH :match"
            )
            .bindparams(match=" OR ".join(f'"{t}"' for t in terms))
            .columns(memory_id=String, rank=Float)
            .subquery("fts")
        )
        stmt: Any = (
            select(Memory, (-fts.c.rank).label("relevance"))
            .join(fts, fts.c.memory_id == Memory.id)
            .where(visible)
            .order_by(fts.c.rank)
            .limit(limit)
        )
    else:
        tsquery = func.to_tsquery("english", " | ".join(terms))
        vector = func.to_tsvector("english", Memory.content)
        relevance = func.ts_rank(vector, tsquery)
        stmt = (
            select(Memory, relevance.label("relevance"))
            .where(visible, vector.op("@@")(tsquery))
            .order_by(relevance.desc())
            .limit(limit)
        )
    rows = await session.execute(stmt)
    return [(memory, float(score)) for memory, score in rows]
