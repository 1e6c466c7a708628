"""The provider path: ``openai:`` models against a local OpenAI-compatible server."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from tests.factories import Account, create_agent, register
from tests.fakes.openai_server import FakeOpenAI, Reply

# These tests drive real provider models against the local fake server.
pytestmark = pytest.mark.usefixtures("allow_model_requests")


@pytest.fixture
def settings_overrides(upstream: FakeOpenAI) -> dict[str, object]:
    return {"openai_base_url": upstream.base_url, "openai_api_key": "test-key"}


async def _agent(
    client: httpx.AsyncClient, upstream: FakeOpenAI, reply: Reply, **fields: object
) -> tuple[Account, str, str]:
    owner = await register(client)
    model = f"fake-{uuid.uuid4().hex[:8]}"
    upstream.reply(model, reply)
    await create_agent(client, owner, "remote", model=f"openai:{model}", **fields)
    return owner, "remote", model


def _last_chat(upstream: FakeOpenAI, model: str) -> dict[str, Any]:
    """The newest chat request (streamed; a turn's memory extraction may come after it)."""
    return [r for r in upstream.requests_for(model) if r.get("stream")][-1]


async def test_openai_model_answers_with_usage(
    client: httpx.AsyncClient, upstream: FakeOpenAI
) -> None:
    reply = Reply(tokens=["Hi", " from", " the", " fake"], prompt_tokens=17)
    owner, slug, model = await _agent(client, upstream, reply)
    response = await client.post(
        f"/v1/agents/{slug}/chat", json={"message": "hello"}, headers=owner.headers
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["response"] == "Hi from the fake"
    assert body["usage"] == {
        "input_tokens": 17,
        "output_tokens": 4,
        "total_tokens": 21,
        "model": f"openai:{model}",
    }
    # Chat Completions, streamed, with usage requested (the one streamed request).
    chats = [r for r in upstream.requests_for(model) if r.get("stream") is True]
    assert len(chats) == 1
    request = chats[0]
    assert request["messages"][-1] == {"role": "user", "content": "hello"}


async def test_temperature_max_tokens_and_instructions_reach_the_provider(
    client: httpx.AsyncClient, upstream: FakeOpenAI
) -> None:
    owner, slug, model = await _agent(
        client,
        upstream,
        Reply(),
        instructions="Answer like a pirate.",
        settings={"temperature": 0.3, "max_tokens": 77},
    )
    await client.post(
        f"/v1/agents/{slug}/chat",
        json={"message": "hi", "context": {"locale": "fr-FR"}},
        headers=owner.headers,
    )
    request = _last_chat(upstream, model)
    assert request["temperature"] == 0.3
    assert request.get("max_tokens", request.get("max_completion_tokens")) == 77
    system = request["messages"][0]
    assert system["role"] == "system"
    assert "Answer like a pirate." in system["content"]
    assert "fr-FR" in system["content"]


async def test_multi_turn_history_reaches_the_provider(
    client: httpx.AsyncClient, upstream: FakeOpenAI
) -> None:
    owner, slug, model = await _agent(client, upstream, Reply(tokens=["First answer"]))
    first = await client.post(
        f"/v1/agents/{slug}/chat", json={"message": "question one"}, headers=owner.headers
    )
    await client.post(
        f"/v1/agents/{slug}/chat",
        json={"message": "question two", "conversation_id": first.json()["conversation_id"]},
        headers=owner.headers,
    )
    messages = _last_chat(upstream, model)["messages"]
    turns = [(m["role"], m["content"]) for m in messages if m["role"] != "system"]
    assert turns == [
        ("user", "question one"),
        ("assistant", "First answer"),
        ("user", "question two"),
    ]


async def test_upstream_failure_is_model_error_and_failed_message(
    client: httpx.AsyncClient, upstream: FakeOpenAI
) -> None:
    owner, slug, _ = await _agent(client, upstream, Reply(tokens=["a", "b", "c"], fail_after=2))
    response = await client.post(
        f"/v1/agents/{slug}/chat/stream/advanced", json={"message": "hi"}, headers=owner.headers
    )
    events = [frame for frame in response.text.split("\n\n") if "data: " in frame]
    assert '"error_code":"model_error"' in events[-1]
    assert '"type":"error"' in events[-1]
    listed = await client.get("/v1/conversations", headers=owner.headers)
    conversation_id = listed.json()["items"][0]["id"]
    messages = await client.get(
        f"/v1/conversations/{conversation_id}/messages", headers=owner.headers
    )
    assistant = messages.json()["items"][-1]
    assert (assistant["status"], assistant["content"]) == ("failed", "ab")
