"""The model loop of a turn: request, stream, run the tools asked for, request again.

Driven through the chat endpoint with scripted models; what the model saw on each request and
what the client and the database got are both checked.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
from pydantic_ai import RunContext
from pydantic_ai.messages import ModelMessage, ModelRequest, ToolReturnPart
from pydantic_ai.models import Model, ModelRequestParameters, StreamedResponse
from pydantic_ai.models.function import AgentInfo, DeltaToolCall, DeltaToolCalls, FunctionModel
from pydantic_ai.models.wrapper import WrapperModel
from pydantic_ai.settings import ModelSettings
from pydantic_ai.usage import RequestUsage
from sqlalchemy import select

from agentstream.models import Message, MessageStatus
from agentstream.state import AppState
from tests.factories import Account, create_agent
from tests.streaming.scripted import parse_sse

Step = Callable[[int, list[ModelMessage]], str | tuple[str, dict[str, Any]]]


@dataclass
class Steps:
    """A model scripted per request: ``step(n, messages)`` answers text or a tool call."""

    step: Step
    seen: list[list[ModelMessage]] = field(default_factory=list)

    def model(self) -> FunctionModel:
        return FunctionModel(stream_function=self._stream, model_name="steps")

    async def _stream(
        self, messages: list[ModelMessage], info: AgentInfo
    ) -> AsyncIterator[str | DeltaToolCalls]:
        self.seen.append(list(messages))
        answer = self.step(len(self.seen), messages)
        if isinstance(answer, str):
            yield answer
            return
        name, args = answer
        call_id = f"call-{len(self.seen)}"
        yield {0: DeltaToolCall(name=name, json_args=json.dumps(args), tool_call_id=call_id)}


async def _chat(
    client: httpx.AsyncClient, state: AppState, owner: Account, steps: Steps
) -> list[dict[str, Any]]:
    name = f"steps:{uuid.uuid4().hex[:8]}"
    state.models.register(name, steps.model())
    slug = f"loop-{uuid.uuid4().hex[:6]}"
    await create_agent(client, owner, slug, model=name)
    path = f"/v1/agents/{slug}/chat/stream/advanced"
    response = await client.post(path, json={"message": "go"}, headers=owner.headers)
    assert response.status_code == 200, response.text
    events, _ = parse_sse(response.text)
    return events  # type: ignore[return-value]


def _last_return(messages: list[ModelMessage]) -> ToolReturnPart:
    last = messages[-1]
    assert isinstance(last, ModelRequest)
    returns = [p for p in last.parts if isinstance(p, ToolReturnPart)]
    assert len(returns) == 1
    return returns[0]


async def _stored(state: AppState, message_id: str) -> Message:
    async with state.sessions() as session:
        row = await session.scalar(select(Message).where(Message.id == uuid.UUID(message_id)))
    assert row is not None
    return row


async def _skill(client: httpx.AsyncClient, owner: Account) -> str:
    skills = (await client.get("/v1/skills", headers=owner.headers)).json()["items"]
    return str(skills[0]["name"])


async def test_tool_result_goes_back_to_the_model_with_the_instructions(
    client: httpx.AsyncClient, state: AppState, owner: Account
) -> None:
    skill = await _skill(client, owner)
    steps = Steps(lambda n, _: ("load_skill", {"skill_name": skill}) if n == 1 else "Done.")
    events = await _chat(client, state, owner, steps)
    assert [e["type"] for e in events][2:] == [
        "tool_call",
        "tool_result",
        "text_delta",
        "usage",
        "done",
    ]
    returned = _last_return(steps.seen[1])
    assert returned.tool_call_id == "call-1"
    assert returned.model_response_str() == events[3]["tool_result_content"]
    assert f"# Skill: {skill}" in returned.model_response_str()
    # Every request carries the agent's instructions, the tool round trip included.
    for messages in steps.seen:
        assert isinstance(messages[-1], ModelRequest)
        assert "skills" in (messages[-1].instructions or "")
    stored = await _stored(state, events[-1]["message_id"])
    assert stored.status is MessageStatus.complete
    assert stored.content == "Done."
    assert [c["tool_call_id"] for c in stored.tool_calls] == ["call-1"]


async def test_unknown_tool_is_sent_back_as_a_retry_and_the_turn_goes_on(
    client: httpx.AsyncClient, state: AppState, owner: Account
) -> None:
    steps = Steps(lambda n, _: ("no_such_tool", {}) if n == 1 else "Recovered.")
    events = await _chat(client, state, owner, steps)
    result = next(e for e in events if e["type"] == "tool_result")
    assert "no_such_tool" in result["tool_result_content"]
    retry = _last_return(steps.seen[1])
    assert retry.outcome == "retried"
    assert result["tool_result_content"] in retry.model_response_str()
    assert events[-1]["type"] == "done"
    assert events[-1]["status"] == "complete"


async def test_invalid_tool_arguments_are_sent_back_as_a_retry(
    client: httpx.AsyncClient, state: AppState, owner: Account
) -> None:
    steps = Steps(lambda n, _: ("load_skill", {"wrong": 1}) if n == 1 else "Fixed.")
    events = await _chat(client, state, owner, steps)
    result = next(e for e in events if e["type"] == "tool_result")
    assert "skill_name" in result["tool_result_content"]  # the missing field is named
    assert _last_return(steps.seen[1]).outcome == "retried"
    assert "".join(e["content"] for e in events if e["type"] == "text_delta") == "Fixed."


async def test_a_tool_retried_past_its_budget_fails_the_turn(
    client: httpx.AsyncClient, state: AppState, owner: Account
) -> None:
    steps = Steps(lambda n, _: ("load_skill", {"wrong": n}))
    events = await _chat(client, state, owner, steps)
    assert len(steps.seen) == 2  # one retry (pydantic-ai's default budget), then the run ends
    assert events[-1]["type"] == "error"
    assert events[-1]["error_code"] == "model_error"
    stored = await _stored(state, events[-1]["message_id"])
    assert stored.status is MessageStatus.failed


async def test_a_model_that_never_stops_calling_tools_fails_after_fifty_requests(
    client: httpx.AsyncClient, state: AppState, owner: Account
) -> None:
    skill = await _skill(client, owner)
    steps = Steps(lambda n, _: ("load_skill", {"skill_name": skill}))
    events = await _chat(client, state, owner, steps)
    assert len(steps.seen) == 50
    assert events[-1]["error_code"] == "model_error"
    assert (await _stored(state, events[-1]["message_id"])).status is MessageStatus.failed


class Metered(WrapperModel):
    """Records the usage the wrapped model reports for each request."""

    def __init__(self, wrapped: Model) -> None:
        super().__init__(wrapped)
        self.usages: list[RequestUsage] = []

    @asynccontextmanager
    async def request_stream(
        self,
        messages: list[ModelMessage],
        model_settings: ModelSettings | None,
        model_request_parameters: ModelRequestParameters,
        run_context: RunContext[Any] | None = None,
    ) -> AsyncIterator[StreamedResponse]:
        async with super().request_stream(
            messages, model_settings, model_request_parameters, run_context
        ) as stream:
            yield stream
        self.usages.append(stream.usage)


async def test_usage_is_the_sum_of_every_request_of_the_turn(
    client: httpx.AsyncClient, state: AppState, owner: Account
) -> None:
    skill = await _skill(client, owner)
    steps = Steps(lambda n, _: ("load_skill", {"skill_name": skill}) if n == 1 else "Loaded.")
    metered = Metered(steps.model())
    steps.model = lambda: metered  # type: ignore[method-assign]
    events = await _chat(client, state, owner, steps)
    assert len(metered.usages) == 2
    usage = events[-1]["usage"]
    assert usage["input_tokens"] == sum(u.input_tokens for u in metered.usages)
    assert usage["output_tokens"] == sum(u.output_tokens for u in metered.usages)
    assert all(u.input_tokens > 0 for u in metered.usages)
