"""The demo embedder and reciprocal rank fusion, without a database."""

from __future__ import annotations

import asyncio
import itertools
import math
import threading

import pytest

from agentstream.memory import embedder
from agentstream.memory.demo import DEMO_DIMENSIONS, demo_vector
from agentstream.memory.embedder import DemoEmbeddingModel
from agentstream.memory.ranking import RRF_K, rrf


def _cosine(a: str, b: str) -> float:
    return sum(x * y for x, y in zip(demo_vector(a), demo_vector(b), strict=True))


def test_demo_vectors_are_deterministic_and_normalised() -> None:
    first = demo_vector("My cat is called Tom")
    assert first == demo_vector("My cat is called Tom")  # CRC-32, not the salted ``hash``
    assert len(first) == DEMO_DIMENSIONS
    assert math.isclose(math.fsum(v * v for v in first), 1.0)
    assert demo_vector("") == [0.0] * DEMO_DIMENSIONS  # nothing to embed: no direction


@pytest.mark.parametrize(
    ("word", "variant", "unrelated"),
    [("Amsterdam", "Amsterdm", "Berlin"), ("colour", "color", "weather"), ("cat", "cats", "dog")],
)
def test_spelling_variants_are_closer_than_unrelated_words(
    word: str, variant: str, unrelated: str
) -> None:
    assert _cosine(word, variant) > 0.4
    assert _cosine(word, variant) > _cosine(word, unrelated) + 0.3


def test_stop_words_do_not_make_sentences_close() -> None:
    assert _cosine("What is my name?", "My dog is in the garden") < 0.1


async def test_the_demo_model_speaks_pydantic_ais_embedding_interface() -> None:
    result = await DemoEmbeddingModel().embed(["tea", "coffee"], input_type="document")
    assert result.embeddings == [demo_vector("tea"), demo_vector("coffee")]
    assert result.model_name == "demo"


async def test_a_batch_is_embedded_on_the_loop_yielding_between_texts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No thread holds the GIL through a batch: each text is embedded on the loop's thread,
    and the loop runs other work between any two texts."""
    events: list[tuple[str, int]] = []

    def recording(text: str, dimensions: int = DEMO_DIMENSIONS) -> list[float]:
        events.append(("embed", threading.get_ident()))
        return demo_vector(text, dimensions)

    async def other_work() -> None:
        while True:
            events.append(("other", threading.get_ident()))
            await asyncio.sleep(0)

    monkeypatch.setattr(embedder, "demo_vector", recording)
    other = asyncio.create_task(other_work())
    await asyncio.sleep(0)
    await DemoEmbeddingModel().embed(["tea", "coffee", "milk"], input_type="document")
    other.cancel()
    assert {ident for _, ident in events} == {threading.get_ident()}
    kinds = [kind for kind, _ in events]
    embeds = [i for i, kind in enumerate(kinds) if kind == "embed"]
    assert len(embeds) == 3
    assert all("other" in kinds[a:b] for a, b in itertools.pairwise(embeds))


def test_rrf_adds_reciprocal_ranks_across_rankings() -> None:
    fused = rrf([["a", "b", "c"], ["c", "a"]])
    assert fused["a"] == pytest.approx(1 / (RRF_K + 1) + 1 / (RRF_K + 2))
    assert fused["c"] == pytest.approx(1 / (RRF_K + 3) + 1 / (RRF_K + 1))
    assert fused["b"] == pytest.approx(1 / (RRF_K + 2))
    # Found by both beats found once, even ranked first once.
    assert sorted(fused, key=fused.__getitem__, reverse=True) == ["a", "c", "b"]
    assert rrf([[], []]) == {}
