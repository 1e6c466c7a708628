"""Embeddings for memories: pydantic-ai's ``Embedder`` over the configured model, and the
offline demo embedder shipped with the package (the default, as the demo chat model is).

Every vector is normalised to unit length, so a dot product is the cosine similarity. A
failing or slow provider never reaches a chat: ``query`` answers ``None`` (search by words)
within ``AGENTSTREAM_EMBEDDING_TIMEOUT_S``, and for ``AGENTSTREAM_EMBEDDING_RETRY_S`` after a
failure it does not even try; the outage is logged once, when it starts, and once when it ends.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

from pydantic_ai.embeddings import (
    Embedder,
    EmbeddingModel,
    EmbeddingResult,
    EmbeddingSettings,
    infer_embedding_model,
)
from pydantic_ai.embeddings.openai import OpenAIEmbeddingModel
from pydantic_ai.embeddings.result import EmbedInputType
from pydantic_ai.providers.openai import OpenAIProvider
from pydantic_ai.usage import RequestUsage

from agentstream.memory.demo import DEMO_DIMENSIONS, demo_vector, normalise
from agentstream.observability import metrics
from agentstream.settings import Settings

log = logging.getLogger("agentstream.memory")

DEMO_EMBEDDING_MODEL = "demo"


class DemoEmbeddingModel(EmbeddingModel):
    """The offline demo embedder: no key, no network, the same vector for the same text."""

    def __init__(self, dimensions: int = DEMO_DIMENSIONS) -> None:
        super().__init__()
        self._dimensions = dimensions

    @property
    def model_name(self) -> str:
        return DEMO_EMBEDDING_MODEL

    @property
    def system(self) -> str:
        return "agentstream"

    async def embed(
        self,
        inputs: str | Sequence[str],
        *,
        input_type: EmbedInputType,
        settings: EmbeddingSettings | None = None,
    ) -> EmbeddingResult:
        texts, _ = self.prepare_embed(inputs, settings)
        # A batch (the indexer's) costs ~0.3 ms per text of pure Python. It runs on the loop,
        # yielding between texts: on a thread it would hold the GIL, and every wake-up of
        # the loop would wait up to a switch interval (5 ms) for it, which doubled the first
        # event of chats on PostgreSQL while 200k memories were embedded.
        vectors = []
        for index, text in enumerate(texts):
            if index:
                await asyncio.sleep(0)  # between texts only: a query costs no loop turn
            vectors.append(demo_vector(text, self._dimensions))
        return EmbeddingResult(
            vectors,
            inputs=texts,
            input_type=input_type,
            model_name=self.model_name,
            provider_name=self.system,
            usage=RequestUsage(),
        )


def build_embedding_model(settings: Settings) -> EmbeddingModel:
    """The configured model; ``openai:`` goes to ``OPENAI_BASE_URL`` as chat models do."""
    name = settings.embedding_model
    if name in (DEMO_EMBEDDING_MODEL, "none"):  # "none": never called (memory/semantic.py)
        return DemoEmbeddingModel()
    provider, _, model = name.partition(":")
    if provider == "openai":
        client = OpenAIProvider(
            base_url=settings.openai_base_url, api_key=settings.openai_api_key or "not-needed"
        )
        return OpenAIEmbeddingModel(model, provider=client)
    return infer_embedding_model(name)


@dataclass(frozen=True)
class QueryVector:
    """A query's embedding and the model that made it (only its own vectors compare)."""

    model: str
    values: list[float]

    @property
    def dimensions(self) -> int:
        return len(self.values)


class MemoryEmbedder:
    """Embeds queries (bounded, failing soft) and documents (for the background indexer)."""

    def __init__(self, settings: Settings, model: EmbeddingModel | None = None) -> None:
        self.model_name = settings.embedding_model
        self._embedder = Embedder(model or build_embedding_model(settings))
        self._timeout_s = settings.embedding_timeout_s
        self._retry_s = settings.embedding_retry_s
        self._down_until = 0.0
        self._outage = False
        self.dimensions: int | None = None  # of the model's vectors, once one was made

    @property
    def available(self) -> bool:
        """False while a recent failure makes searches use words alone."""
        return time.monotonic() >= self._down_until

    async def query(self, text: str) -> QueryVector | None:
        """The query's vector, or ``None`` (search by words) if the provider fails, is slower
        than the timeout, or failed within the last ``embedding_retry_s``."""
        if not self.available:
            return None
        try:
            async with asyncio.timeout(self._timeout_s):
                result = await self._embedder.embed_query(text)
        except Exception as exc:
            self.failed("query", exc)
            return None
        self.succeeded()
        vector = normalise(result.embeddings[0])
        self.dimensions = len(vector)
        return QueryVector(self.model_name, vector)

    async def documents(self, texts: Sequence[str], timeout_s: float) -> list[list[float]]:
        """Vectors of memories' contents; raises on failure (the indexer retries later)."""
        async with asyncio.timeout(timeout_s):
            result = await self._embedder.embed_documents(texts)
        if len(result.embeddings) != len(texts):
            raise ValueError("the embedding model returned a different number of vectors")
        vectors = [normalise(v) for v in result.embeddings]
        if vectors:
            self.dimensions = len(vectors[0])
        return vectors

    def failed(self, phase: metrics.EmbeddingPhase, exc: BaseException) -> None:
        """Count a failed call; log the start of an outage once; stop trying for a while."""
        metrics.embedding_failed(phase)
        self._down_until = time.monotonic() + self._retry_s
        if not self._outage:
            self._outage = True
            log.warning(
                "embedding model %s failed (%s): memories are searched by words until it answers",
                self.model_name,
                type(exc).__name__ if isinstance(exc, TimeoutError) else exc,
            )

    def succeeded(self) -> None:
        """A call worked: end the outage (logged once)."""
        self._down_until = 0.0
        if self._outage:
            self._outage = False
            log.info("embedding model %s answers again", self.model_name)
