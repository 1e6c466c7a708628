"""Scripted embeddings for the fake OpenAI server: each model maps words to concepts.

A text's vector has one axis per concept whose words it contains (``"feline"`` and ``"cat"``
both light the ``cat`` axis), and the last axis when it contains none, so texts about
different concepts are orthogonal and texts about the same one are parallel.
"""

from __future__ import annotations

import base64
import re
from array import array
from dataclasses import dataclass, field


@dataclass
class Concepts:
    """What ``/v1/embeddings`` answers for one model."""

    groups: dict[str, tuple[str, ...]] = field(default_factory=dict)
    delay_s: float = 0.0
    fail: bool = False  # answer 500

    @property
    def dimensions(self) -> int:
        return len(self.groups) + 1

    def vector(self, text: str) -> list[float]:
        words = set(re.findall(r"\w+", text.lower()))
        values = [1.0 if words & set(g) else 0.0 for g in self.groups.values()]
        return [*values, 0.0 if any(values) else 1.0]


def embedding_response(
    model: str, concepts: Concepts, inputs: list[str], encoding: str = "float"
) -> dict[str, object]:
    """An OpenAI ``create embedding`` response body (``base64``: little-endian float32, as the
    openai SDK asks for by default)."""

    def encode(vector: list[float]) -> object:
        if encoding == "base64":
            return base64.b64encode(array("f", vector).tobytes()).decode()
        return vector

    return {
        "object": "list",
        "model": model,
        "data": [
            {"object": "embedding", "index": i, "embedding": encode(concepts.vector(text))}
            for i, text in enumerate(inputs)
        ],
        "usage": {"prompt_tokens": len(inputs), "total_tokens": len(inputs)},
    }
