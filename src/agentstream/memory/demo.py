"""The demo embedder's vectors: no key, no network, no model (``memory/embedder.py``
wraps them as a pydantic-ai embedding model). Light to import, for tools such as the bench."""

from __future__ import annotations

import math
import re
import zlib
from collections.abc import Sequence

from agentstream.memory.search import STOP_WORDS

DEMO_DIMENSIONS = 256
_WORD = re.compile(r"\w+", re.UNICODE)


def demo_vector(text: str, dimensions: int = DEMO_DIMENSIONS) -> list[float]:
    """Hashed character trigrams of each word (with its boundaries) plus the word itself,
    signed by a second hash bit, normalised: "Amsterdam" and "Amsterdm" share most trigrams,
    "cats" and "cat" too. Deterministic across processes (CRC-32, not ``hash``)."""
    vector = [0.0] * dimensions
    for word in _WORD.findall(text.lower()):
        if word in STOP_WORDS:
            continue
        padded = f"<{word}>"
        features = [padded] + [padded[i : i + 3] for i in range(len(padded) - 2)]
        for feature in features:
            code = zlib.crc32(feature.encode())
            vector[code % dimensions] += 1.0 if code & 0x80000000 else -1.0
    return normalise(vector)


def normalise(vector: Sequence[float]) -> list[float]:
    """``vector`` scaled to unit length (a zero vector stays zero)."""
    norm = math.sqrt(sum(v * v for v in vector))
    return [v / norm for v in vector] if norm else [0.0] * len(vector)
