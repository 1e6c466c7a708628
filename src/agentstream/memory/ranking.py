"""Hybrid ranking: word and meaning candidates merged by reciprocal rank fusion, then
weighed with importance and recency."""

from __future__ import annotations

import math
import uuid
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Literal, TypeVar

from agentstream.models import Memory, utcnow

K = TypeVar("K", bound=Hashable)
Match = Literal["text", "meaning"]

# The usual constant of reciprocal rank fusion (Cormack et al.): damps the head of each list.
RRF_K = 60
# Weights of the final score; the fused relevance is normalised to [0, 1] among candidates.
W_RELEVANCE, W_IMPORTANCE, W_RECENCY = 0.6, 0.3, 0.1
RECENCY_HALF_LIFE_DAYS = 30.0


def rrf(rankings: Sequence[Sequence[K]], k: int = RRF_K) -> dict[K, float]:
    """Reciprocal rank fusion: each item scores the sum of ``1 / (k + rank)`` over the
    rankings it appears in (rank 1 is the best)."""
    fused: dict[K, float] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking, start=1):
            fused[item] = fused.get(item, 0.0) + 1.0 / (k + rank)
    return fused


@dataclass(frozen=True)
class Hit:
    """A memory found for a query, its final score and how it matched."""

    memory: Memory
    score: float
    matched: tuple[Match, ...]


def _recency(memory: Memory) -> float:
    age_days = (utcnow() - memory.created_at).total_seconds() / 86_400
    return math.exp(-math.log(2) * age_days / RECENCY_HALF_LIFE_DAYS)


def fuse(
    text: Sequence[tuple[Memory, float]], meaning: Sequence[tuple[Memory, float]], limit: int
) -> list[Hit]:
    """Both candidate lists (each best first) as one ranking of at most ``limit`` hits."""
    memories: dict[uuid.UUID, Memory] = {}
    matched: dict[uuid.UUID, list[Match]] = {}
    for kind, candidates in (("text", text), ("meaning", meaning)):
        for memory, _ in candidates:
            memories.setdefault(memory.id, memory)
            matched.setdefault(memory.id, []).append(kind)  # type: ignore[arg-type]
    fused = rrf([[m.id for m, _ in text], [m.id for m, _ in meaning]])
    if not fused:
        return []
    best = max(fused.values())
    hits = [
        Hit(
            memory=memories[key],
            score=round(
                W_RELEVANCE * relevance / best
                + W_IMPORTANCE * memories[key].importance / 10
                + W_RECENCY * _recency(memories[key]),
                6,
            ),
            matched=tuple(matched[key]),
        )
        for key, relevance in fused.items()
    ]
    hits.sort(key=lambda hit: hit.score, reverse=True)
    return hits[:limit]
