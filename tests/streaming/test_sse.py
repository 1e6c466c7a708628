"""SSE transports (basic and advanced), driven by a scripted FunctionModel."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from typing import Any

import httpx
from pydantic_ai.messages import ModelRequest, ModelResponse, TextPart, UserPromptPart
from sqlalchemy import select

from agentstream.auth.tokens import create_access_token
from agentstream.models import Message
from agentstream.settings import Settings
from agentstream.state import AppState
from tests.factories import Account, create_agent, register
from tests.streaming.scripted import Script, parse_sse

MakeAgent = Callable[..., Any]


async def stream(
    client: httpx.AsyncClient,
    account: Account,
    slug: str,
    payload: dict[str, Any],
    *,
    advanced: bool = False,
) -> tuple[httpx.Response, list[dict[str, Any]]]:
    path = f"/v1/agents/{slug}/chat/stream" + ("/advanced" if advanced else "")
    response = await client.post(path, json=payload, headers=account.headers)
    events: list[dict[str, Any]] = []
    if response.status_code == 200:
        events, _ = parse_sse(response.text)  # type: ignore[assignment]
    return response, events


class TestSSEFormat:
    async def test_sse_events_have_data_prefix(
        self, client: httpx.AsyncClient, owner: Account, scripted_agent: MakeAgent, script: Script
    ) -> None:
        slug = await scripted_agent(script)
        response, _ = await stream(client, owner, slug, {"message": "hi"})
        frames = response.text.split("\n\n")[:-1]
        assert frames
        for f in frames:
            id_line, data_line = f.split("\n")
            assert id_line == f"id: {json.loads(data_line.removeprefix('data: '))['seq']}"
        assert response.text.endswith("\n\n")

    async def test_first_chunk_has_conversation_id(
        self, client: httpx.AsyncClient, owner: Account, scripted_agent: MakeAgent, script: Script
    ) -> None:
        slug = await scripted_agent(script)
        _, events = await stream(client, owner, slug, {"message": "hi"})
        deltas = [e for e in events if e["type"] == "text_delta"]
        uuid.UUID(deltas[0]["conversation_id"])
        assert deltas[0]["conversation_id"] == events[-1]["conversation_id"]

    async def test_subsequent_chunks_no_conversation_id(
        self, client: httpx.AsyncClient, owner: Account, scripted_agent: MakeAgent, script: Script
    ) -> None:
        slug = await scripted_agent(script)
        _, events = await stream(client, owner, slug, {"message": "hi"})
        deltas = [e for e in events if e["type"] == "text_delta"]
        assert len(deltas) == 3
        assert all("conversation_id" not in d for d in deltas[1:])

    async def test_usage_event_after_content(
        self, client: httpx.AsyncClient, owner: Account, scripted_agent: MakeAgent, script: Script
    ) -> None:
        slug = await scripted_agent(script)
        _, events = await stream(client, owner, slug, {"message": "hi"})
        types = [e["type"] for e in events]
        assert types == ["text_delta", "text_delta", "text_delta", "usage", "done"]
        usage = events[-2]["usage"]
        assert usage["output_tokens"] > 0
        assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]
        assert usage["model"].startswith("scripted:")

    async def test_done_event_is_last(
        self, client: httpx.AsyncClient, owner: Account, scripted_agent: MakeAgent, script: Script
    ) -> None:
        slug = await scripted_agent(script)
        _, events = await stream(client, owner, slug, {"message": "hi"}, advanced=True)
        assert events[-1]["type"] == "done"
        assert events[-1]["status"] == "complete"
        assert sum(e["type"] in ("done", "error") for e in events) == 1

    async def test_error_on_agent_not_found(
        self, client: httpx.AsyncClient, owner: Account
    ) -> None:
        response, _ = await stream(client, owner, "ghost", {"message": "hi"})
        assert response.status_code == 404
        assert response.json()["error"] == "agent_not_found"


class TestSSELifecycle:
    async def test_error_on_inactive_agent(
        self, client: httpx.AsyncClient, owner: Account, scripted_agent: MakeAgent, script: Script
    ) -> None:
        slug = await scripted_agent(script)
        await client.patch(f"/v1/agents/{slug}", json={"status": "paused"}, headers=owner.headers)
        response, _ = await stream(client, owner, slug, {"message": "hi"})
        assert response.status_code == 409
        assert response.json()["error"] == "agent_inactive"
        assert script.calls == []

    async def test_new_conversation_created(
        self, client: httpx.AsyncClient, owner: Account, scripted_agent: MakeAgent, script: Script
    ) -> None:
        slug = await scripted_agent(script)
        _, events = await stream(client, owner, slug, {"message": "start"})
        conversation_id = events[-1]["conversation_id"]
        got = await client.get(f"/v1/conversations/{conversation_id}", headers=owner.headers)
        assert got.status_code == 200
        assert got.json()["title"] == "start"

    async def test_existing_conversation_used(
        self, client: httpx.AsyncClient, owner: Account, scripted_agent: MakeAgent, script: Script
    ) -> None:
        slug = await scripted_agent(script)
        _, first = await stream(client, owner, slug, {"message": "one"})
        conversation_id = first[-1]["conversation_id"]
        _, second = await stream(
            client, owner, slug, {"message": "two", "conversation_id": conversation_id}
        )
        assert second[-1]["conversation_id"] == conversation_id
        # The model saw the first turn as history: both prompts in order, and the first reply.
        messages, _ = script.calls[-1]
        prompts = [
            p.content
            for m in messages
            if isinstance(m, ModelRequest)
            for p in m.parts
            if isinstance(p, UserPromptPart)
        ]
        replies = [
            p.content
            for m in messages
            if isinstance(m, ModelResponse)
            for p in m.parts
            if isinstance(p, TextPart)
        ]
        assert prompts == ["one", "two"]
        assert replies == ["Hello there!"]

    async def test_messages_persisted_after_stream(
        self,
        client: httpx.AsyncClient,
        owner: Account,
        scripted_agent: MakeAgent,
        script: Script,
        state: AppState,
    ) -> None:
        slug = await scripted_agent(script)
        _, events = await stream(client, owner, slug, {"message": "persist me"})
        async with state.sessions() as session:
            rows = (
                await session.scalars(
                    select(Message)
                    .where(Message.conversation_id == uuid.UUID(events[-1]["conversation_id"]))
                    .order_by(Message.created_at)
                )
            ).all()
        assert [(m.role.value, m.content, m.status.value) for m in rows] == [
            ("user", "persist me", "complete"),
            ("assistant", "Hello there!", "complete"),
        ]
        assert str(rows[1].id) == events[-1]["message_id"]

    async def test_memory_extraction_triggered(
        self, client: httpx.AsyncClient, owner: Account, state: AppState
    ) -> None:
        await create_agent(client, owner, "demo-bot", model="demo")
        _, events = await stream(
            client, owner, "demo-bot", {"message": "remember that my cat is called Miso"}
        )
        assert events[-1]["type"] == "done"
        await state.extractor.drain()
        memories = await client.get("/v1/memories", headers=owner.headers)
        assert any("Miso" in m["content"] for m in memories.json()["items"])

    async def test_requires_team_context(
        self,
        client: httpx.AsyncClient,
        owner: Account,
        scripted_agent: MakeAgent,
        script: Script,
        settings: Settings,
    ) -> None:
        """A stream runs only in a team the caller belongs to, chosen by token or X-Team-ID."""
        slug = await scripted_agent(script)
        path = f"/v1/agents/{slug}/chat/stream"
        anonymous = await client.post(path, json={"message": "hi"})
        assert anonymous.status_code == 401
        assert anonymous.json()["error"] == "unauthorized"
        teamless = create_access_token(settings.resolved_jwt_secret, owner.user_id, None, 60)
        no_team = await client.post(
            path, json={"message": "hi"}, headers={"Authorization": f"Bearer {teamless}"}
        )
        assert no_team.status_code == 403
        assert no_team.json()["error"] == "forbidden"
        stranger = await register(client, "stranger")
        foreign = await client.post(
            path, json={"message": "hi"}, headers=stranger.in_team(owner.team_id)
        )
        assert foreign.status_code == 403
        assert foreign.json()["error"] == "forbidden"
        assert script.calls == []
        # In the token's own team the same stream runs.
        _, events = await stream(client, owner, slug, {"message": "hi"})
        assert events[-1]["type"] == "done"


class TestSSEIntegrationBasic:
    async def test_stream_returns_event_stream_content_type(
        self, client: httpx.AsyncClient, owner: Account, scripted_agent: MakeAgent, script: Script
    ) -> None:
        slug = await scripted_agent(script)
        response, _ = await stream(client, owner, slug, {"message": "hi"})
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["cache-control"] == "no-cache"
        assert response.headers["x-accel-buffering"] == "no"
        assert response.headers["x-request-id"]

    async def test_stream_requires_auth(self, client: httpx.AsyncClient) -> None:
        response = await client.post(
            "/v1/agents/bot/chat/stream/advanced",
            json={"message": "hi"},
            headers={"Authorization": "Bearer nonsense"},
        )
        assert response.status_code == 401

    async def test_existing_basic_stream_unchanged(
        self, client: httpx.AsyncClient, owner: Account, scripted_agent: MakeAgent, script: Script
    ) -> None:
        slug = await scripted_agent(script)
        _, events = await stream(client, owner, slug, {"message": "hi"})
        assert "".join(e["content"] for e in events if e["type"] == "text_delta") == "Hello there!"
        assert {e["type"] for e in events} <= {"text_delta", "usage", "done"}

    async def test_advanced_endpoint_exists(
        self, client: httpx.AsyncClient, owner: Account, scripted_agent: MakeAgent, script: Script
    ) -> None:
        slug = await scripted_agent(script)
        response, events = await stream(client, owner, slug, {"message": "hi"}, advanced=True)
        assert response.status_code == 200
        assert events[0]["type"] == "memory_context"


class TestSSEIntegrationAdvanced:
    async def test_concurrent_streams_no_interference(
        self, client: httpx.AsyncClient, owner: Account, scripted_agent: MakeAgent
    ) -> None:
        first, second = Script(tokens=["alpha", "-1"]), Script(tokens=["beta", "-2"])
        slug_a = await scripted_agent(first, slug="a")
        slug_b = await scripted_agent(second, slug="b")
        (_, a), (_, b) = await asyncio.gather(
            stream(client, owner, slug_a, {"message": "x"}, advanced=True),
            stream(client, owner, slug_b, {"message": "y"}, advanced=True),
        )
        text = lambda evs: "".join(e["content"] for e in evs if e["type"] == "text_delta")  # noqa: E731
        assert text(a) == "alpha-1"
        assert text(b) == "beta-2"
        assert a[-1]["conversation_id"] != b[-1]["conversation_id"]

    async def test_stream_with_context_param(
        self, client: httpx.AsyncClient, owner: Account, scripted_agent: MakeAgent, script: Script
    ) -> None:
        slug = await scripted_agent(script)
        await stream(client, owner, slug, {"message": "hi", "context": {"page": "/pricing"}})
        _, info = script.calls[-1]
        assert "/pricing" in (info.instructions or "")

    async def test_conversation_wrong_team_error(
        self,
        client: httpx.AsyncClient,
        owner: Account,
        scripted_agent: MakeAgent,
        script: Script,
    ) -> None:
        slug = await scripted_agent(script)
        _, events = await stream(client, owner, slug, {"message": "mine"})
        intruder = await register(client, "intruder")
        await create_agent(client, intruder, slug, model="demo")
        response, _ = await stream(
            client,
            intruder,
            slug,
            {"message": "x", "conversation_id": events[-1]["conversation_id"]},
        )
        assert response.status_code == 404
        assert response.json()["error"] == "conversation_not_found"

    async def test_advanced_has_memory_context_event(
        self, client: httpx.AsyncClient, owner: Account, scripted_agent: MakeAgent, script: Script
    ) -> None:
        slug = await scripted_agent(script)
        await client.post(
            "/v1/memories", json={"content": "Owner prefers tea over coffee"}, headers=owner.headers
        )
        _, events = await stream(client, owner, slug, {"message": "tea or coffee?"}, advanced=True)
        assert events[0] == {
            "type": "memory_context",
            "memory_count": 1,
            "seq": 1,
            "run_id": events[-1]["message_id"],  # the run is its assistant message
            "conversation_id": events[-1]["conversation_id"],
        }
        _, info = script.calls[-1]
        assert "prefers tea" in (info.instructions or "")


class TestAdvancedSSE:
    async def test_memory_context_is_first_event(
        self, client: httpx.AsyncClient, owner: Account, scripted_agent: MakeAgent, script: Script
    ) -> None:
        slug = await scripted_agent(script)
        _, events = await stream(client, owner, slug, {"message": "hi"}, advanced=True)
        assert events[0] == {
            "type": "memory_context",
            "memory_count": 0,
            "seq": 1,
            "run_id": events[-1]["message_id"],  # the run is its assistant message
            "conversation_id": events[-1]["conversation_id"],
        }

    async def test_typing_event_before_text(
        self, client: httpx.AsyncClient, owner: Account, scripted_agent: MakeAgent, script: Script
    ) -> None:
        slug = await scripted_agent(script)
        _, events = await stream(client, owner, slug, {"message": "hi"}, advanced=True)
        types = [e["type"] for e in events]
        assert types.index("typing") < types.index("text_delta")

    async def test_tool_call_event_with_fields(
        self, client: httpx.AsyncClient, owner: Account, scripted_agent: MakeAgent
    ) -> None:
        skills = (await client.get("/v1/skills", headers=owner.headers)).json()["items"]
        name = skills[0]["name"]
        script = Script(tool_call=("load_skill", {"skill_name": name}), tokens=["Loaded."])
        slug = await scripted_agent(script)
        _, events = await stream(client, owner, slug, {"message": "use a skill"}, advanced=True)
        call = next(e for e in events if e["type"] == "tool_call")
        assert call == {
            "type": "tool_call",
            "seq": 3,  # after memory_context and typing
            "tool_name": "load_skill",
            "tool_args": {"skill_name": name},
            "tool_call_id": "call-1",
        }
        result = next(e for e in events if e["type"] == "tool_result")
        assert result["tool_call_id"] == "call-1"
        assert result["tool_name"] == "load_skill"
        assert isinstance(result["tool_result_content"], str)
        assert result["tool_result_content"]

    async def test_usage_event_before_done(
        self, client: httpx.AsyncClient, owner: Account, scripted_agent: MakeAgent, script: Script
    ) -> None:
        slug = await scripted_agent(script)
        _, events = await stream(client, owner, slug, {"message": "hi"}, advanced=True)
        assert [e["type"] for e in events[-2:]] == ["usage", "done"]
        assert events[-2]["usage"] == events[-1]["usage"]

    async def test_full_event_ordering(
        self, client: httpx.AsyncClient, owner: Account, scripted_agent: MakeAgent
    ) -> None:
        skills = (await client.get("/v1/skills", headers=owner.headers)).json()["items"]
        script = Script(tool_call=("load_skill", {"skill_name": skills[0]["name"]}))
        slug = await scripted_agent(script)
        _, events = await stream(client, owner, slug, {"message": "hi"}, advanced=True)
        assert [e["type"] for e in events] == [
            "memory_context",
            "typing",
            "tool_call",
            "tool_result",
            "text_delta",
            "text_delta",
            "text_delta",
            "usage",
            "done",
        ]


class TestSSEEdgeCases:
    async def test_empty_response_still_sends_done(
        self, client: httpx.AsyncClient, owner: Account, scripted_agent: MakeAgent
    ) -> None:
        slug = await scripted_agent(Script(tokens=[""]))
        _, events = await stream(client, owner, slug, {"message": "hi"})
        assert [e["type"] for e in events] == ["usage", "done"]

    async def test_long_response_streams_completely(
        self, client: httpx.AsyncClient, owner: Account, scripted_agent: MakeAgent
    ) -> None:
        tokens = [f"word{i} " for i in range(400)]
        slug = await scripted_agent(Script(tokens=tokens))
        _, events = await stream(client, owner, slug, {"message": "hi"})
        text = "".join(e["content"] for e in events if e["type"] == "text_delta")
        assert text == "".join(tokens)
        assert len(text) > 1000

    async def test_agent_error_mid_stream(
        self,
        client: httpx.AsyncClient,
        owner: Account,
        scripted_agent: MakeAgent,
        state: AppState,
    ) -> None:
        slug = await scripted_agent(Script(tokens=["par", "tial", "never"], fail_after=2))
        response, events = await stream(client, owner, slug, {"message": "hi"}, advanced=True)
        assert response.status_code == 200
        assert events[-1]["type"] == "error"
        assert events[-1]["error_code"] == "model_error"
        assert "exploded" not in events[-1]["content"]  # no internals leak
        assert [e["content"] for e in events if e["type"] == "text_delta"] == ["par", "tial"]
        async with state.sessions() as session:
            stored = await session.get(Message, uuid.UUID(events[-1]["message_id"]))
        assert stored is not None
        assert (stored.status.value, stored.content) == ("failed", "partial")

    async def test_sse_format_compliance(
        self, client: httpx.AsyncClient, owner: Account, scripted_agent: MakeAgent
    ) -> None:
        slug = await scripted_agent(Script(tokens=["line\none", "\n\n", "data: fake"]))
        response, events = await stream(client, owner, slug, {"message": "hi"}, advanced=True)
        # parse_sse asserts every frame is a single `data: <json>` line.
        text = "".join(e["content"] for e in events if e["type"] == "text_delta")
        assert text == "line\none\n\ndata: fake"
        assert response.text.count("data: ") == len(events) + 1  # +1 for the literal in content


class TestPhase5Regression:
    async def test_nonstreaming_chat_still_works(
        self, client: httpx.AsyncClient, owner: Account, scripted_agent: MakeAgent, script: Script
    ) -> None:
        slug = await scripted_agent(script)
        response = await client.post(
            f"/v1/agents/{slug}/chat", json={"message": "hi"}, headers=owner.headers
        )
        assert response.status_code == 200
        body = response.json()
        assert body["response"] == "Hello there!"
        assert body["request_id"] == response.headers["X-Request-ID"]
        assert body["usage"]["output_tokens"] > 0

    async def test_conversation_persisted_after_stream_error(
        self, client: httpx.AsyncClient, owner: Account, scripted_agent: MakeAgent
    ) -> None:
        slug = await scripted_agent(Script(tokens=["a", "b"], fail_after=1))
        _, events = await stream(client, owner, slug, {"message": "keep me"})
        assert events[-1]["type"] == "error"
        messages = await client.get(
            f"/v1/conversations/{events[-1]['conversation_id']}/messages", headers=owner.headers
        )
        assert [(m["role"], m["content"], m["status"]) for m in messages.json()["items"]] == [
            ("user", "keep me", "complete"),
            ("assistant", "a", "failed"),
        ]

    async def test_nonstreaming_model_error_is_reported(
        self, client: httpx.AsyncClient, owner: Account, scripted_agent: MakeAgent
    ) -> None:
        slug = await scripted_agent(Script(tokens=["a"], fail_after=0))
        response = await client.post(
            f"/v1/agents/{slug}/chat", json={"message": "hi"}, headers=owner.headers
        )
        assert response.status_code == 503
        assert response.json()["error"] == "model_error"
