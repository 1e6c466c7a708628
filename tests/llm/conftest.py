"""Model fixtures: a fresh fake OpenAI-compatible server per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes.openai_server import FakeOpenAI


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAI]:
    """A fake Chat Completions server on 127.0.0.1 with its own request records."""
    with FakeOpenAI() as fake:
        yield fake
