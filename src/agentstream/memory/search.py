"""Full-text candidates for a query, over the caller's own readable memories only.

SQLite: FTS5, where each ``MATCH`` names the caller's two scopes (their own memories in the
team, and the team's shared ones), so the index yields only those rows. The rows are ranked
by BM25 computed here over the caller's readable rows, not by FTS5's ``bm25()``: that one
counts each word's rows across the whole table, every tenant's (7 ms per search with 200k
memories of other teams holding the prompt's words, and other tenants' data would shift
the caller's order).
PostgreSQL: ``ts_rank`` (each row's own words, no table-wide statistics) over the stored
tsvector of the rows the visibility rule selects.
"""

from __future__ import annotations

import math
import re
import uuid
from collections import Counter
from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    ColumnElement,
    String,
    column,
    func,
    literal,
    literal_column,
    select,
    table,
    union_all,
)
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


# BM25's usual parameters (Robertson and Zaragoza).
BM25_K1, BM25_B = 1.2, 0.75
_FTS = table("memories_fts", column("memory_id", String), column("memories_fts", String))


def _in_scope(caller: Caller) -> str:
    """The FTS5 query of the caller's two scopes."""
    own, shared = scope_token(caller.team_id, caller.user_id), scope_token(caller.team_id, None)
    return f'scope : ("{own}" OR "{shared}")'


def fts_match(caller: Caller, terms: list[str]) -> str:
    """The FTS5 query: the caller's scopes AND any of the words, every token quoted (user
    text is never FTS5 syntax)."""
    words = " OR ".join(f'"{t}"' for t in terms)
    return f"{_in_scope(caller)} AND ({words})"


def _word_hits(caller: Caller, visible: ColumnElement[bool], terms: list[str]) -> Any:
    """SQLite: one row per (readable memory, word of the query it holds), with the memory's
    length and the number of rows in the caller's scopes; every ``MATCH`` names the scopes,
    so the index reads only the caller's rows."""
    hits = union_all(
        *(
            select(_FTS.c.memory_id, literal(index).label("term")).where(
                _FTS.c.memories_fts.match(fts_match(caller, [word]))
            )
            for index, word in enumerate(terms)
        )
    ).subquery("hits")
    in_scope = _FTS.c.memories_fts.match(_in_scope(caller))
    scoped = select(func.count()).select_from(_FTS).where(in_scope).scalar_subquery()
    return (
        select(Memory.id, hits.c.term, func.length(Memory.content), scoped)
        .join(hits, hits.c.memory_id == Memory.id)
        .where(visible)
    )


def bm25(hits: Sequence[tuple[uuid.UUID, int, int, int]]) -> dict[uuid.UUID, float]:
    """BM25 of each memory from its ``(id, word, length, scoped)`` rows: a word's weight
    follows how few of the caller's rows hold it, a memory's length (in characters, against
    the average of those found) damps it. A word counts once per memory."""
    holding = Counter(word for _, word, _, _ in hits)
    lengths = {memory_id: length for memory_id, _, length, _ in hits}
    average = sum(lengths.values()) / len(lengths) if lengths else 1.0
    scores: dict[uuid.UUID, float] = {}
    for memory_id, word, length, scoped in hits:
        rows = holding[word]
        idf = math.log(1 + (max(scoped - rows, 0) + 0.5) / (rows + 0.5))
        damping = BM25_K1 * (1 - BM25_B + BM25_B * length / max(average, 1.0))
        scores[memory_id] = scores.get(memory_id, 0.0) + idf * (BM25_K1 + 1) / (1 + damping)
    return scores


def postgres_statement(visible: ColumnElement[bool], terms: list[str], limit: int) -> Any:
    """PostgreSQL: rows of ``Memory`` with their relevance (higher is better)."""
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
    if session.get_bind().dialect.name != "sqlite":
        rows = await session.execute(postgres_statement(visible, terms, limit))
        return [(memory, float(score)) for memory, score in rows]
    hits = (await session.execute(_word_hits(caller, visible, terms))).all()
    scores = bm25(hits)
    best = sorted(scores, key=lambda memory_id: (-scores[memory_id], memory_id))[:limit]
    found = {m.id: m for m in await session.scalars(select(Memory).where(Memory.id.in_(best)))}
    return [(found[i], scores[i]) for i in best if i in found]
