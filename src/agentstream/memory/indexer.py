"""The background job that embeds memories: new ones within a second or two of being stored
(API or extraction), and every memory again after the embedding model (or its dimension)
changes. Until a memory has a vector of the current model it is found by words.

The work left is the rows themselves (those without a vector of the current model and
dimension, found through ``ix_memories_embedding``), so the job resumes where it stopped
after a restart. It works in batches, each read and written in its own short transaction,
never holding one while the embedding model answers. Progress is the
``agentstream_memories_to_embed`` gauge and a log line per thousand memories. With several
workers each runs the job; two may embed the same batch (the same vectors, written twice).
This is a system job over every team's rows, not a read on behalf of a caller, so it does
not go through ``tenancy``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import typing
import uuid
from typing import Any

from sqlalchemy import REAL, ColumnElement, Table, and_, bindparam, cast, func, or_, select, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from agentstream.db import SessionMaker, transaction
from agentstream.memory.embedder import MemoryEmbedder
from agentstream.models import Memory
from agentstream.models.memory import Vector
from agentstream.observability import metrics
from agentstream.settings import Settings

log = logging.getLogger("agentstream.memory")

_LOG_EVERY = 1000
# A batch of documents may take longer than one query; this bounds a hung provider.
_BATCH_TIMEOUT_FACTOR = 10


def pending(model: str, dimensions: int | None) -> ColumnElement[bool]:
    """Live memories without a vector of ``model`` (and ``dimensions``, once known): written
    as ranges of ``ix_memories_embedding`` rather than ``!=``, so the index finds them."""
    other_model = or_(
        Memory.embedding_model.is_(None),
        Memory.embedding_model < model,
        Memory.embedding_model > model,
    )
    if dimensions is not None:
        other_model = or_(
            other_model,
            and_(
                Memory.embedding_model == model,
                or_(Memory.embedding_dims < dimensions, Memory.embedding_dims > dimensions),
            ),
        )
    return and_(other_model, Memory.deleted_at.is_(None))


class MemoryIndexer:
    """Owns the embedding task; ``wake`` after storing memories to embed them at once."""

    def __init__(self, sessions: SessionMaker, embedder: MemoryEmbedder, settings: Settings):
        self.pgvector = False  # set by SemanticMemory once the backend is known
        self._sessions = sessions
        self._embedder = embedder
        self._batch = settings.embedding_batch
        self._poll_s = settings.embedding_poll_s
        self._timeout_s = settings.embedding_timeout_s * _BATCH_TIMEOUT_FACTOR
        self._remaining: int | None = None  # an estimate while a backlog is worked off
        self._done = 0
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    def start(self) -> None:
        """Start the background task (once)."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="memory-indexer")

    def wake(self) -> None:
        """Embed what is pending now rather than at the next poll."""
        self._wake.set()

    async def aclose(self) -> None:
        """Stop the task; a batch in flight is simply done again by the next start."""
        if self._task is not None:
            # The flag as well as the cancel: a provider client may turn a cancel into an
            # error of its own, which the loop survives.
            self._stopping = True
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
            self._stopping = False

    async def _run(self) -> None:
        while not self._stopping:
            try:
                more = await self.step()
            except Exception:
                # The database may be down: the rows wait; nothing is lost.
                log.exception("memory indexing failed; retrying")
                more = False
            if self._stopping:
                return
            if more:
                await asyncio.sleep(0)  # let requests in between batches
                continue
            # ``asyncio.wait`` rather than a timeout: a timeout expiring as ``aclose`` cancels
            # the task could swallow that cancel.
            woken = asyncio.ensure_future(self._wake.wait())
            try:
                await asyncio.wait({woken}, timeout=self._poll_s)
            finally:
                woken.cancel()
            self._wake.clear()

    async def step(self) -> bool:
        """Embed one batch; whether there may be more right away."""
        if not self._embedder.available:
            return False
        model = self._embedder.model_name
        async with transaction(self._sessions) as session:
            condition = pending(model, self._embedder.dimensions)
            rows = (
                await session.execute(
                    select(Memory.id, Memory.content).where(condition).limit(self._batch)
                )
            ).all()
            if len(rows) == self._batch and self._remaining is None:
                self._remaining = await session.scalar(select(func.count()).where(condition))
                log.info("embedding %s memories with %s", self._remaining, model)
        if not rows:
            self._finished(model)
            return False
        try:
            vectors = await self._embedder.documents([r.content for r in rows], self._timeout_s)
        except Exception as exc:
            self._embedder.failed("index", exc)
            return False
        self._embedder.succeeded()
        async with transaction(self._sessions) as session:
            await _store(session, model, [r.id for r in rows], vectors, self.pgvector)
        self._progress(model, len(rows))
        return len(rows) == self._batch

    def _progress(self, model: str, count: int) -> None:
        before = self._done
        self._done += count
        if self._remaining is not None:
            self._remaining = max(self._remaining - count, 0)
            if before // _LOG_EVERY != self._done // _LOG_EVERY:
                log.info(
                    "embedding memories with %s: %s done, about %s left",
                    model,
                    self._done,
                    self._remaining,
                )
        metrics.memories_embedded(count, self._remaining or 0)

    def _finished(self, model: str) -> None:
        if self._remaining is not None:
            log.info("embedding memories with %s: all done (%s)", model, self._done)
            self._remaining = None
            metrics.memories_embedded(0, 0)


async def _store(
    session: AsyncSession,
    model: str,
    ids: list[uuid.UUID],
    vectors: list[list[float]],
    pgvector: bool,
) -> None:
    """Write a batch's vectors with their model and dimension (one statement, many rows)."""
    table = typing.cast("Table", Memory.__table__)  # Core: no ORM bookkeeping for a batch
    value: ColumnElement[Any]
    if pgvector:
        # As real[]: pgvector's assignment cast turns it into a vector.
        value = cast(bindparam("vector", type_=ARRAY(REAL())), ARRAY(REAL()))
    else:
        value = bindparam("vector", type_=Vector())
    stmt = (
        update(table)
        .where(table.c.id == bindparam("memory_id"))
        .values(embedding=value, embedding_model=model, embedding_dims=len(vectors[0]))
    )
    await session.execute(
        stmt, [{"memory_id": i, "vector": v} for i, v in zip(ids, vectors, strict=True)]
    )
