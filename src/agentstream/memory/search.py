"""Full-text candidates for a query, over the caller's own readable memories only.

SQLite: FTS5 (bm25), where the ``MATCH`` itself names the caller's two scopes (their own
memories in the team, and the team's shared ones), so the index yields only those rows;
other tenants' rows are never ranked (before, 200k of them cost ~0.5 s per search).
PostgreSQL: ``ts_rank`` over the stored tsvector of the rows the visibility rule selects.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from sqlalchemy import ColumnElement, Float, String, func, literal_column, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from agentstream.models import Memory
from agentstream.tenancy import Caller

_WORD = re.compile(r"\w+", re.UNICODE)
MAX_TERMS = 24
# Words that carry no topic: a memory is not relevant for sharing "is" or "my" with a message
# (nor, to the demo embedder, close for sharing their n-grams).
STOP_WORDS = frozenset(
    re.findall(
        r"\w+",
        "a an and are as at be been but by can could did do does for from had has have he her his "
        "i if in into is it its me my no not of on or our she so than that the their them then "
        "there these they this to us was we were what when where which who why will with would "
        "you your",
    )
)


def query_terms(query: str) -> list[str]:
    """The topical words of a message, deduplicated; punctuation, search syntax and stop
    words are dropped."""
    seen: dict[str, None] = {}
    for word in _WORD.findall(query.lower()):
        if len(word) > 1 and word not in STOP_WORDS:
            seen.setdefault(word, None)
    return list(seen)[:MAX_TERMS]


def scope_token(team_id: uuid.UUID, user_id: uuid.UUID | None) -> str:
    """The FTS token of one readable set (migration 0003 indexes the same): the trailing
    ``x`` keeps the porter stemmer from touching it."""
    return f"{team_id.hex}{user_id.hex if user_id else 'shared'}x"


def fts_match(caller: Caller, terms: list[str]) -> str:
    """The FTS5 query: the caller's scopes AND any of the words, every token quoted (user
    text is never FTS5 syntax)."""
    own, shared = scope_token(caller.team_id, caller.user_id), scope_token(caller.team_id, None)
    words = " OR ".join(f'"{t}"' for t in terms)
    return f'scope : ("{own}" OR "{shared}") AND ({words})'


def text_statement(
    dialect: str, caller: Caller, visible: ColumnElement[bool], terms: list[str], limit: int
) -> Any:
    """The search statement: rows of ``Memory`` with their relevance (higher is better)."""
    if dialect == "sqlite":
        fts = (
            text(
                "SELECT memory_id, bm25(memories_fts) AS rank FROM memories_fts "
                "WHERE memories_fts MATCH :match"
            )
            .bindparams(match=fts_match(caller, terms))
            .columns(memory_id=String, rank=Float)
            .subquery("fts")
        )
        return (
            select(Memory, (-fts.c.rank).label("relevance"))
            .join(fts, fts.c.memory_id == Memory.id)
            .where(visible)
            .order_by(fts.c.rank)
            .limit(limit)
        )
    tsquery = func.to_tsquery("english", " | ".join(terms))
    vector: ColumnElement[Any] = literal_column("memories.search_vector")
    relevance = func.ts_rank(vector, tsquery)
    return (
        select(Memory, relevance.label("relevance"))
        .where(visible, vector.op("@@")(tsquery))
        .order_by(relevance.desc())
        .limit(limit)
    )


async def text_matches(
    session: AsyncSession, caller: Caller, visible: ColumnElement[bool], query: str, limit: int
) -> list[tuple[Memory, float]]:
    """Visible memories matching any word of ``query`` with a relevance (higher is better);
    ``visible`` must be the caller's visibility rule (``tenancy.memory_visibility``)."""
    terms = query_terms(query)
    if not terms:
        return []
    dialect = session.get_bind().dialect.name
    rows = await session.execute(text_statement(dialect, caller, visible, terms, limit))
    return [(memory, float(score)) for memory, score in rows]
