"""Memories: the API, retrieval ranking and scope isolation, background extraction."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import timedelta

import httpx
import pytest
from pydantic_ai.messages import ModelMessage, ModelResponse
from pydantic_ai.models.function import AgentInfo, FunctionModel
from sqlalchemy import select, update

from agentstream.memory.service import retrieve
from agentstream.models import Agent, Memory, utcnow
from agentstream.state import AppState
from tests.factories import Account, add_member, create_agent, register
from tests.fakes.openai_server import FakeOpenAI, Reply, ToolCall


@pytest.fixture
def settings_overrides(upstream: FakeOpenAI) -> dict[str, object]:
    """``openai:`` models talk to the local fake server."""
    return {"openai_base_url": upstream.base_url, "openai_api_key": "test-key"}


async def _agent_id(state: AppState, account: Account, slug: str) -> uuid.UUID:
    async with state.sessions() as session:
        agent_id = await session.scalar(
            select(Agent.id).where(Agent.team_id == account.team_id, Agent.slug == slug)
        )
    assert agent_id is not None
    return agent_id


async def _remember(
    client: httpx.AsyncClient, account: Account, content: str, **fields: object
) -> dict[str, object]:
    response = await client.post(
        "/v1/memories", json={"content": content, **fields}, headers=account.headers
    )
    assert response.status_code == 201, response.text
    body: dict[str, object] = response.json()
    return body


async def _retrieve(
    state: AppState, account: Account, agent_id: uuid.UUID, query: str
) -> list[str]:
    async with state.sessions() as session:
        found = await retrieve(session, account, agent_id, query, limit=5)
        await session.commit()
    return [m.content for m in found]


async def test_create_list_search_and_delete(client: httpx.AsyncClient) -> None:
    owner = await register(client)
    await create_agent(client, owner, "bot")
    tea = await _remember(client, owner, "Prefers green tea in the morning", importance=8)
    await _remember(client, owner, "Works on the billing service", agent="bot")
    listed = (await client.get("/v1/memories", headers=owner.headers)).json()["items"]
    assert {m["content"] for m in listed} == {
        "Prefers green tea in the morning",
        "Works on the billing service",
    }
    assert next(m for m in listed if m["agent"] == "bot")["shared"] is False
    found = (await client.get("/v1/memories?q=tea", headers=owner.headers)).json()["items"]
    assert [m["content"] for m in found] == ["Prefers green tea in the morning"]
    deleted = await client.delete(f"/v1/memories/{tea['id']}", headers=owner.headers)
    assert deleted.status_code == 204
    again = (await client.get("/v1/memories?q=tea", headers=owner.headers)).json()["items"]
    assert again == []


@pytest.mark.parametrize(
    "payload",
    [
        {"content": ""},
        {"content": "x", "importance": 0},
        {"content": "x", "importance": 11},
        {"content": "x" * 2001},
        {"content": "x", "owner": "me"},
    ],
)
async def test_invalid_memories_rejected(client: httpx.AsyncClient, payload: object) -> None:
    owner = await register(client)
    response = await client.post("/v1/memories", json=payload, headers=owner.headers)
    assert response.status_code == 422
    assert response.json()["error"] == "validation_error"


async def test_unknown_agent_and_shared_needs_admin(client: httpx.AsyncClient) -> None:
    owner = await register(client)
    member = await register(client)
    await add_member(client, owner, member, "member")
    unknown = await client.post(
        "/v1/memories", json={"content": "x", "agent": "ghost"}, headers=owner.headers
    )
    assert unknown.json()["error"] == "agent_not_found"
    shared = await client.post(
        "/v1/memories", json={"content": "x", "shared": True}, headers=member.in_team(owner.team_id)
    )
    assert shared.status_code == 403
    ok = await _remember(client, owner, "Team standup is at 9", shared=True)
    assert ok["shared"] is True
    # A shared memory is visible to the member; a member cannot delete it.
    visible = await client.get("/v1/memories", headers=member.in_team(owner.team_id))
    assert [m["content"] for m in visible.json()["items"]] == ["Team standup is at 9"]
    denied = await client.delete(f"/v1/memories/{ok['id']}", headers=member.in_team(owner.team_id))
    assert denied.status_code == 403


async def test_retrieval_ranks_relevance_importance_and_recency(
    client: httpx.AsyncClient, state: AppState
) -> None:
    owner = await register(client)
    await create_agent(client, owner, "bot")
    agent_id = await _agent_id(state, owner, "bot")
    await _remember(client, owner, "Favourite programming language is Rust", importance=9)
    await _remember(client, owner, "Learning the Rust borrow checker slowly", importance=2)
    old = await _remember(client, owner, "Rust conference ticket booked", importance=2)
    await _remember(client, owner, "Has a dog called Pixel", importance=10)
    async with state.sessions() as session:
        await session.execute(
            update(Memory)
            .where(Memory.id == uuid.UUID(str(old["id"])))
            .values(created_at=utcnow() - timedelta(days=365))
        )
        await session.commit()
    found = await _retrieve(state, owner, agent_id, "which language do I like? rust")
    assert found[0] == "Favourite programming language is Rust"
    assert found.index("Learning the Rust borrow checker slowly") < found.index(
        "Rust conference ticket booked"
    )
    assert "Has a dog called Pixel" not in found  # unrelated memories never pad the prompt


@pytest.mark.parametrize(
    ("query", "matches"),
    [
        ('"AND OR NOT * ( ) : ^ -', False),
        ("NEAR(a b)", False),
        ("'; DROP TABLE memories; --", False),
        ("col:value", True),  # search syntax is read as plain words: "value" matches
        ('"column" AND (stable)', True),
    ],
)
async def test_search_syntax_in_user_text_is_read_as_words(
    client: httpx.AsyncClient, state: AppState, query: str, matches: bool
) -> None:
    owner = await register(client)
    await create_agent(client, owner, "bot")
    memory = "The value of the column is stable"
    await _remember(client, owner, memory)
    expected = [memory] if matches else []
    assert await _retrieve(state, owner, await _agent_id(state, owner, "bot"), query) == expected
    response = await client.get("/v1/memories", params={"q": query}, headers=owner.headers)
    assert response.status_code == 200
    assert [m["content"] for m in response.json()["items"]] == expected


async def test_scope_isolation(client: httpx.AsyncClient, state: AppState) -> None:
    owner = await register(client, "x")
    colleague = await register(client, "y")
    stranger = await register(client, "z")
    await add_member(client, owner, colleague, "member")
    await create_agent(client, owner, "alpha")
    await create_agent(client, owner, "beta")
    await create_agent(client, stranger, "alpha")
    alpha, beta = await _agent_id(state, owner, "alpha"), await _agent_id(state, owner, "beta")
    await _remember(client, owner, "Secret project codename is Falcon", agent="alpha")
    gone = await _remember(client, owner, "Falcon budget is large")
    await client.delete(f"/v1/memories/{gone['id']}", headers=owner.headers)
    assert await _retrieve(state, owner, alpha, "falcon") == ["Secret project codename is Falcon"]
    assert await _retrieve(state, owner, beta, "falcon") == []  # another agent
    colleague_in_team = Account(
        colleague.user_id,
        owner.team_id,
        colleague.email,
        colleague.password,
        colleague.access_token,
        colleague.refresh_token,
    )
    assert await _retrieve(state, colleague_in_team, alpha, "falcon") == []  # another user
    stranger_alpha = await _agent_id(state, stranger, "alpha")
    assert await _retrieve(state, stranger, stranger_alpha, "falcon") == []  # another team


async def test_extraction_runs_after_the_reply_and_deduplicates(
    client: httpx.AsyncClient, state: AppState
) -> None:
    owner = await register(client)
    await create_agent(client, owner, "bot", model="demo")
    for _ in range(2):
        chat = await client.post(
            "/v1/agents/bot/chat",
            json={"message": "Please remember that my favourite colour is teal."},
            headers=owner.headers,
        )
        assert chat.status_code == 200
        await state.extractor.drain()
    async with state.sessions() as session:
        rows = (await session.scalars(select(Memory).where(Memory.team_id == owner.team_id))).all()
    assert [m.content for m in rows] == ["my favourite colour is teal"]
    assert rows[0].source_message_id is not None
    assert rows[0].agent_id == await _agent_id(state, owner, "bot")
    assert rows[0].user_id == owner.user_id


async def test_extraction_never_delays_or_breaks_chat(
    client: httpx.AsyncClient, state: AppState, caplog: pytest.LogCaptureFixture
) -> None:
    gate, started = asyncio.Event(), asyncio.Event()

    async def extraction(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        started.set()  # the extraction agent: block until released, then fail
        await gate.wait()
        raise RuntimeError("extraction model down")

    async def replies(messages: list[ModelMessage], info: AgentInfo):  # type: ignore[no-untyped-def]
        yield "fine"

    state.models.register("flaky:x", FunctionModel(extraction, stream_function=replies))
    owner = await register(client)
    await create_agent(client, owner, "bot", model="flaky:x")
    try:
        # The reply must come back while the extraction is still blocked: were extraction
        # inline, this bounded wait would time out and fail the test (not hang it).
        chat = await asyncio.wait_for(
            client.post("/v1/agents/bot/chat", json={"message": "hi"}, headers=owner.headers),
            10,
        )
        assert chat.status_code == 200
        assert chat.json()["response"] == "fine"
        # The extraction for that reply runs (and is still blocked) afterwards.
        await asyncio.wait_for(started.wait(), 5)
    finally:
        gate.set()
    await state.extractor.drain()
    assert any("memory extraction failed" in r.getMessage() for r in caplog.records)


@pytest.mark.usefixtures("allow_model_requests")
async def test_structured_extraction_with_a_real_model(
    client: httpx.AsyncClient, state: AppState, upstream: FakeOpenAI
) -> None:
    """A real provider model (OpenAI Chat Completions, against the local fake) chats in text
    and answers the extraction's structured-output request with a ``final_result`` call."""
    model = f"fake-{uuid.uuid4().hex[:8]}"
    facts = {"response": [{"content": "Lives in Lisbon", "importance": 7}]}
    upstream.reply(
        model,
        Reply(tokens=["Nice", " city!"], output_call=ToolCall("final_result", facts)),
    )
    owner = await register(client)
    await create_agent(client, owner, "bot", model=f"openai:{model}")
    chat = await client.post(
        "/v1/agents/bot/chat", json={"message": "I live in Lisbon"}, headers=owner.headers
    )
    assert chat.json()["response"] == "Nice city!"
    await state.extractor.drain()
    memories = (await client.get("/v1/memories", headers=owner.headers)).json()["items"]
    assert [(m["content"], m["importance"], m["agent"]) for m in memories] == [
        ("Lives in Lisbon", 7, "bot")
    ]
    # The extraction was a separate, structured request to the same model.
    [extraction] = [r for r in upstream.requests_for(model) if not r.get("stream")]
    assert "final_result" in {t["function"]["name"] for t in extraction["tools"]}
    assert "I live in Lisbon" in json.dumps(extraction["messages"])
