"""The memory feature's long-lived parts: the embedder, the vector backend, the indexer."""

from __future__ import annotations

import logging

from pydantic_ai.embeddings import EmbeddingModel
from sqlalchemy.ext.asyncio import AsyncEngine

from agentstream.db import SessionMaker
from agentstream.memory import vectors
from agentstream.memory.embedder import MemoryEmbedder
from agentstream.memory.indexer import MemoryIndexer
from agentstream.memory.service import VectorSearch
from agentstream.settings import Settings

log = logging.getLogger("agentstream.memory")

NO_EMBEDDINGS = "none"


class SemanticMemory:
    """Built by the app's lifespan; ``vector_search`` is a search's meaning half."""

    def __init__(
        self,
        settings: Settings,
        engine: AsyncEngine,
        sessions: SessionMaker,
        model: EmbeddingModel | None = None,
    ) -> None:
        # "none": words only, no embedding at all (the indexer does not run either).
        self.enabled = settings.embedding_model != NO_EMBEDDINGS or model is not None
        self.embedder = MemoryEmbedder(settings, model)
        self.indexer = MemoryIndexer(sessions, self.embedder, settings)
        self._engine = engine
        self._backend: vectors.Backend | None = None
        self._scan = settings.memory_vector_scan
        self._min_similarity = settings.memory_min_similarity

    async def start(self) -> None:
        """Detect the vector backend and start the indexer."""
        if self.enabled:
            await self._detect()
            self.indexer.pgvector = self._backend == "pgvector"
            self.indexer.start()

    async def _detect(self) -> vectors.Backend | None:
        if self._backend is None:
            try:
                self._backend = await vectors.detect(self._engine)
            except Exception:
                # The database is not reachable yet: search by words, detect on next use.
                log.warning("memory vectors: could not detect the backend yet", exc_info=True)
        return self._backend

    async def vector_search(self, text: str) -> VectorSearch | None:
        """The query's vector and how to compare it, or ``None``: search by words alone (the
        model failed, is slow, or failed a moment ago). Call it holding no transaction."""
        if not self.enabled:
            return None
        backend = await self._detect()
        if backend is None:
            return None
        query = await self.embedder.query(text)
        if query is None:
            return None
        return VectorSearch(backend, query, self._scan, self._min_similarity)

    async def aclose(self) -> None:
        """Stop the indexer."""
        await self.indexer.aclose()
