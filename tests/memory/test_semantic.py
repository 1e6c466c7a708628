"""Semantic memory (SPEC "Semantic memory") against a local OpenAI-compatible embeddings
endpoint whose vectors are scripted by concept: "cat" and "feline" share an axis."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from pathlib import Path

import httpx
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import func, insert, select

from agentstream.app import build_state
from agentstream.memory.service import retrieve, search
from agentstream.models import Agent, Memory
from agentstream.settings import Settings
from agentstream.state import AppState
from tests.conftest import make_settings
from tests.factories import Account, add_member, create_agent, register
from tests.fakes.embeddings import Concepts
from tests.fakes.openai_server import FakeOpenAI

pytestmark = pytest.mark.usefixtures("allow_model_requests")

CONCEPTS = {"cat": ("cat", "cats", "feline", "kitten"), "tea": ("tea", "chai")}
TOM = "My cat is called Tom"


@pytest.fixture
def embedding_model(upstream: FakeOpenAI) -> str:
    """A model name of this test's own on the fake endpoint, scripted with ``CONCEPTS``."""
    name = f"emb-{uuid.uuid4().hex[:8]}"
    upstream.embed(name, Concepts(dict(CONCEPTS)))
    return name


@pytest.fixture
def settings(
    own_database_url: str, tmp_path: Path, settings_overrides: dict[str, object]
) -> Settings:
    """A database of this module's own: the e2e tests' server, up all session on the shared
    one, runs its own indexer (the demo embedder), which would re-embed these tests' rows."""
    return make_settings(own_database_url, tmp_path, **settings_overrides)


@pytest.fixture
def settings_overrides(upstream: FakeOpenAI, embedding_model: str) -> dict[str, object]:
    return {
        "openai_base_url": upstream.base_url,
        "openai_api_key": "test-key",
        "embedding_model": f"openai:{embedding_model}",
        "embedding_poll_s": 0.05,
        "embedding_timeout_s": 1.0,
    }


def _failures() -> float:
    """Query embeddings that failed so far (the /metrics counter)."""
    value = REGISTRY.get_sample_value("agentstream_embedding_failures_total", {"phase": "query"})
    return value or 0.0


async def _embedded(state: AppState, count: int, model: str | None = None) -> None:
    """Wait (polling, with a deadline) until ``count`` memories have a vector of ``model``."""
    model = model or state.memory.embedder.model_name
    deadline = time.monotonic() + 20
    while True:
        async with state.sessions() as session:
            done = await session.scalar(select(func.count()).where(Memory.embedding_model == model))
        if (done or 0) >= count:
            return
        assert time.monotonic() < deadline, f"only {done} of {count} memories embedded"
        await asyncio.sleep(0.02)


async def _remember(
    client: httpx.AsyncClient, account: Account, content: str, **kw: object
) -> None:
    response = await client.post(
        "/v1/memories", json={"content": content, **kw}, headers=account.headers
    )
    assert response.status_code == 201, response.text


async def _search(client: httpx.AsyncClient, account: Account, q: str) -> list[dict[str, object]]:
    response = await client.get("/v1/memories", params={"q": q}, headers=account.headers)
    assert response.status_code == 200, response.text
    items: list[dict[str, object]] = response.json()["items"]
    return items


async def test_a_memory_is_found_by_meaning(client: httpx.AsyncClient, state: AppState) -> None:
    owner = await register(client)
    await _remember(client, owner, TOM)
    await _remember(client, owner, "Drinks chai every morning")
    await _embedded(state, 2)
    [hit] = await _search(client, owner, "What is my feline's name?")
    assert (hit["content"], hit["matched"]) == (TOM, ["meaning"])
    assert isinstance(hit["score"], float)
    assert hit["score"] > 0
    # Words and meaning together: both are reported.
    [both] = await _search(client, owner, "cat")
    assert (both["content"], both["matched"]) == (TOM, ["text", "meaning"])
    # A list without ``q`` carries no score.
    listed = (await client.get("/v1/memories", headers=owner.headers)).json()["items"]
    assert {m["score"] for m in listed} == {None}


async def test_a_chat_retrieves_memories_by_meaning(
    client: httpx.AsyncClient, state: AppState
) -> None:
    owner = await register(client)
    await create_agent(client, owner, "bot")
    await _remember(client, owner, TOM)
    await _embedded(state, 1)
    async with client.stream(
        "POST",
        "/v1/agents/bot/chat/stream/advanced",
        json={"message": "What is my feline's name?"},
        headers=owner.headers,
    ) as response:
        first = await anext(
            line async for line in response.aiter_lines() if line.startswith("data:")
        )
    assert json.loads(first.removeprefix("data:"))["memory_count"] == 1


async def test_meaning_never_crosses_tenancy(client: httpx.AsyncClient, state: AppState) -> None:
    owner = await register(client)
    colleague = await register(client)
    stranger = await register(client)
    await add_member(client, owner, colleague, "member")
    await create_agent(client, owner, "alpha")
    await create_agent(client, owner, "beta")
    await _remember(client, stranger, "Their kitten is Felix")  # another team
    colleague_here = colleague.in_team(owner.team_id)
    response = await client.post(
        "/v1/memories", json={"content": "Colleague's kitten is Misty"}, headers=colleague_here
    )
    assert response.status_code == 201  # another user of the same team
    await _remember(client, owner, "Beta's furry friend is Luna, a cat", agent="beta")
    await _embedded(state, 3)
    # The owner sees their own memory (for agent beta) and nothing of the others'.
    hits = await _search(client, owner, "feline")
    assert [h["content"] for h in hits] == ["Beta's furry friend is Luna, a cat"]
    async with state.sessions() as session:
        alpha = await session.scalar(
            select(Agent.id).where(Agent.team_id == owner.team_id, Agent.slug == "alpha")
        )
        assert alpha is not None
        vector = await state.memory.vector_search("my feline")
        assert vector is not None
        found = await retrieve(session, owner, alpha, "my kitten", 5, vector=vector)
    assert found == []  # not the other team's, not the colleague's, not agent beta's


async def test_vectors_of_another_model_or_dimension_are_never_compared(
    client: httpx.AsyncClient, state: AppState
) -> None:
    owner = await register(client)
    model = state.memory.embedder.model_name
    cat = [1.0, 0.0, 0.0]  # what the current model gives "cat" (3 dimensions)
    rows = [
        ("Other model's cat", "openai:another", 3, cat),
        ("Other dimension's cat", model, 4, [1.0, 0.0, 0.0, 0.0]),
        ("This model's cat", model, 3, cat),
    ]
    async with state.sessions() as session:
        await session.execute(
            insert(Memory),
            [
                {
                    "id": uuid.uuid4(),
                    "team_id": owner.team_id,
                    "user_id": owner.user_id,
                    "content": content.replace("cat", "pet"),  # no word in common
                    "importance": 5,
                    "embedding": vector,
                    "embedding_model": name,
                    "embedding_dims": dims,
                }
                for content, name, dims, vector in rows
            ],
        )
        await session.commit()
    hits = await _search(client, owner, "feline")
    assert [h["content"] for h in hits] == ["This model's pet"]


async def test_provider_down_falls_back_to_words(
    client: httpx.AsyncClient,
    state: AppState,
    upstream: FakeOpenAI,
    embedding_model: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    owner = await register(client)
    await create_agent(client, owner, "bot")
    await _remember(client, owner, TOM)
    await _embedded(state, 1)
    upstream.embed(embedding_model, Concepts(dict(CONCEPTS), fail=True))
    failures = _failures()
    caplog.set_level(logging.INFO, "agentstream.memory")
    assert await _search(client, owner, "feline") == []  # meaning is unavailable
    assert [h["matched"] for h in await _search(client, owner, "cat")] == [["text"]]
    chat = await client.post(
        "/v1/agents/bot/chat", json={"message": "my cat?"}, headers=owner.headers
    )
    assert chat.status_code == 200
    assert _failures() == failures + 1
    outage = [r for r in caplog.records if "searched by words" in r.getMessage()]
    assert len(outage) == 1  # logged once per outage, not per search
    # Back up: the next search after the retry delay finds by meaning again, logged once.
    upstream.embed(embedding_model, Concepts(dict(CONCEPTS)))
    state.memory.embedder.succeeded()  # as if the retry delay had passed
    assert [h["content"] for h in await _search(client, owner, "feline")] == [TOM]
    assert any("answers again" in r.getMessage() for r in caplog.records)


async def test_slow_provider_never_stalls_a_chat(
    client: httpx.AsyncClient, state: AppState, upstream: FakeOpenAI, embedding_model: str
) -> None:
    owner = await register(client)
    await create_agent(client, owner, "bot")
    await _remember(client, owner, TOM)
    await _embedded(state, 1)
    # Slower than AGENTSTREAM_EMBEDDING_TIMEOUT_S (1 s here): the chat goes on by words.
    upstream.embed(embedding_model, Concepts(dict(CONCEPTS), delay_s=30))
    failures = _failures()
    chat = await asyncio.wait_for(
        client.post("/v1/agents/bot/chat", json={"message": "my cat?"}, headers=owner.headers),
        15,  # bounds the test; the timeout under test is 1 s
    )
    assert chat.status_code == 200
    assert _failures() == failures + 1


async def test_new_memories_are_found_by_words_until_embedded(
    client: httpx.AsyncClient, state: AppState
) -> None:
    owner = await register(client)
    await state.memory.indexer.aclose()  # no background embedding in this test
    await _remember(client, owner, TOM)
    assert [h["matched"] for h in await _search(client, owner, "cat")] == [["text"]]
    assert await _search(client, owner, "feline") == []
    assert await state.memory.indexer.step() is False  # one batch: everything
    assert [h["matched"] for h in await _search(client, owner, "feline")] == [["meaning"]]


async def test_extracted_memories_are_embedded_in_the_background(
    client: httpx.AsyncClient, state: AppState
) -> None:
    owner = await register(client)
    await create_agent(client, owner, "bot", model="demo")
    chat = await client.post(
        "/v1/agents/bot/chat",
        json={"message": "Please remember that my cat is called Tom."},
        headers=owner.headers,
    )
    assert chat.status_code == 200
    await state.extractor.drain()
    await _embedded(state, 1)
    assert [h["content"] for h in await _search(client, owner, "feline")] == [
        "my cat is called Tom"
    ]


async def test_model_change_re_embeds_and_resumes_after_a_restart(
    client: httpx.AsyncClient, state: AppState, upstream: FakeOpenAI, settings: Settings
) -> None:
    owner = await register(client)
    contents = [f"Cat fact number {i}" for i in range(12)] + ["Chai is brewed hot"]
    for content in contents:
        await _remember(client, owner, content)
    await _embedded(state, len(contents))
    await state.memory.indexer.aclose()
    new_model = f"emb2-{uuid.uuid4().hex[:8]}"
    upstream.embed(new_model, Concepts(dict(CONCEPTS)))
    changed = settings.model_copy(
        update={"embedding_model": f"openai:{new_model}", "embedding_batch": 3}
    )
    async with build_state(changed) as first:
        await first.memory.indexer.aclose()  # step by hand: stop after two batches
        assert await first.memory.indexer.step() is True
        assert await first.memory.indexer.step() is True
        # Meanwhile every memory is found by words, and by meaning only those re-embedded
        # (the old model's vectors no longer compare).
        vector = await first.memory.vector_search("feline fact")
        assert vector is not None
        async with first.sessions() as session:
            hits = await search(session, owner, None, "feline fact", 50, vector)
            redone = set(
                await session.scalars(
                    select(Memory.content).where(Memory.embedding_model == vector.query.model)
                )
            )
        assert len(redone) == 6
        assert {h.memory.content for h in hits} == set(contents[:12])
        assert {h.memory.content for h in hits if "meaning" in h.matched} == redone - {
            "Chai is brewed hot"
        }
    assert len(upstream.embedded_for(new_model)) == 6 + 1  # two batches + the query
    async with build_state(changed) as second:  # the restart: picks up where it stopped
        await _embedded(second, len(contents), f"openai:{new_model}")
    embedded = upstream.embedded_for(new_model)
    documents = [text for text in embedded if text != "feline fact"]
    assert sorted(documents) == sorted(contents)  # each memory once: nothing redone
