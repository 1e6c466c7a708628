"""Full-text candidates for a query, over the caller's own readable memories only.

SQLite: FTS5, where each ``MATCH`` names the caller's two scopes (their own memories in the
team, and the team's shared ones), so the index yields only those rows. Rows are ranked by
BM25 over the rows of those two scopes (each word counts once per memory; memories are
short, so no length damping), summed in SQL, not by FTS5's ``bm25()``: that one counts each
word's rows across the whole table, every tenant's (7 ms per search with 200k memories of
other teams holding the prompt's words, and other tenants' data shifted the caller's order).
The cost follows the caller's own matching rows: ~1 ms for a caller with a few memories
beside 200k of other teams; ~50 ms for one with 20k memories holding the query's words.
PostgreSQL: ``ts_rank`` (each row's own words, no table-wide statistics) over the stored
tsvector of the rows the visibility rule selects."""

from __future__ import annotations

import math
import re
import uuid
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    String,
    column,
    exists,
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


_FTS = table(
    "memories_fts",
    column("rowid", Integer),
    column("memory_id", String),
    column("memories_fts", String),
)


def _in_scope(caller: Caller) -> str:
    """The FTS5 query of the caller's two scopes."""
    own, shared = scope_token(caller.team_id, caller.user_id), scope_token(caller.team_id, None)
    return f'scope : ("{own}" OR "{shared}")'


def fts_match(caller: Caller, terms: list[str]) -> str:
    """The FTS5 query: the caller's scopes AND any of the words, every token quoted (user
    text is never FTS5 syntax)."""
    words = " OR ".join(f'"{t}"' for t in terms)
    return f"{_in_scope(caller)} AND ({words})"


def _count(match: str) -> Any:
    return select(func.count()).select_from(_FTS).where(_FTS.c.memories_fts.match(match))


def _word_counts(caller: Caller, terms: list[str]) -> Any:
    """SQLite: the rows in the caller's scopes, then of those the rows holding each word (read
    from the index's entries of the caller's rows alone)."""
    counts = [_count(_in_scope(caller))] + [_count(fts_match(caller, [w])) for w in terms]
    return select(*(c.scalar_subquery() for c in counts))


def idf(rows: int, holding: int) -> float:
    """BM25's weight of a word that ``holding`` of ``rows`` rows hold (always positive)."""
    return math.log(1 + (max(rows - holding, 0) + 0.5) / (holding + 0.5))


def _ranked(
    caller: Caller, visible: ColumnElement[bool], weights: dict[str, float], limit: int
) -> Any:
    """SQLite: the ids of the visible rows holding any of the words, best first by the sum of
    their words' weights. The index's row ids are summed before any row is read; each memory
    is then found by its primary key (a join on ``memories`` would let the planner walk the
    team's rows for every hit)."""
    hits = union_all(
        *(
            select(_FTS.c.rowid.label("fts_row"), literal(weight).label("weight")).where(
                _FTS.c.memories_fts.match(fts_match(caller, [word]))
            )
            for word, weight in weights.items()
        )
    ).subquery("hits")
    score = func.sum(hits.c.weight).label("score")
    ranked = select(hits.c.fts_row, score).group_by(hits.c.fts_row).subquery("ranked")
    found = _FTS.alias("found")
    readable = exists().where(Memory.id == found.c.memory_id, visible)
    return (
        select(found.c.memory_id, ranked.c.score)
        .join(ranked, found.c.rowid == ranked.c.fts_row)
        .where(readable)
        .order_by(ranked.c.score.desc(), found.c.memory_id)
        .limit(limit)
    )


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
    rows, *holding = (await session.execute(_word_counts(caller, terms))).one()
    weights = {w: idf(rows, n) for w, n in zip(terms, holding, strict=True) if n}
    if not weights:
        return []
    best = {
        uuid.UUID(memory_id): float(score)
        for memory_id, score in await session.execute(_ranked(caller, visible, weights, limit))
    }
    found = await session.scalars(select(Memory).where(Memory.id.in_(best), visible))
    return sorted(((m, best[m.id]) for m in found), key=lambda pair: (-pair[1], pair[0].id))
