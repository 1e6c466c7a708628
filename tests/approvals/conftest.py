"""Approval fixtures: an agent whose tools come from a tool source registered on the state
(the seam MCP servers use), one tool of which needs approval; a scripted model calls it."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from pydantic_ai.messages import ModelMessage, ModelRequest, ToolReturnPart
from pydantic_ai.models.function import AgentInfo, DeltaToolCall, DeltaToolCalls, FunctionModel
from pydantic_ai.toolsets import AbstractToolset, FunctionToolset

from agentstream.chat.deps import ChatDeps
from agentstream.state import AppState
from tests.factories import Account, create_agent, register
from tests.streaming.scripted import parse_sse


@dataclass
class Tools:
    """The tools' side: what ran, with which arguments."""

    deleted: list[str] = field(default_factory=list)
    looked_up: list[str] = field(default_factory=list)

    def toolset(self) -> FunctionToolset[ChatDeps]:
        tools = FunctionToolset[ChatDeps]()

        @tools.tool_plain(requires_approval=True)
        def delete_file(path: str) -> str:
            """Delete a file (needs the user's approval)."""
            self.deleted.append(path)
            return f"deleted {path}"

        @tools.tool_plain
        def lookup(query: str) -> str:
            """Look something up (no approval needed)."""
            self.looked_up.append(query)
            return f"found {query}"

        return tools

    async def source(self, deps: ChatDeps) -> AbstractToolset[ChatDeps] | None:
        return self.toolset()


@dataclass
class Planner:
    """A model that first calls ``calls`` (name, args) at once, then answers with what its tools
    returned; ``seen`` keeps every request's messages."""

    calls: list[tuple[str, dict[str, Any]]]
    seen: list[list[ModelMessage]] = field(default_factory=list)
    name: str = ""  # its name in the model registry, once an agent uses it
    # With ``hold``, the first request waits for it (``started`` is set) before answering.
    hold: asyncio.Event | None = None
    started: asyncio.Event = field(default_factory=asyncio.Event)

    def model(self) -> FunctionModel:
        return FunctionModel(stream_function=self._stream, model_name="planner")

    async def _stream(
        self, messages: list[ModelMessage], info: AgentInfo
    ) -> AsyncIterator[str | DeltaToolCalls]:
        self.seen.append(list(messages))
        calls = list(self.calls)
        if self.hold is not None and len(self.seen) == 1:
            self.started.set()
            await self.hold.wait()
        last = messages[-1]
        returns = [p for p in last.parts if isinstance(p, ToolReturnPart)]
        if isinstance(last, ModelRequest) and returns:
            yield "Results: " + "; ".join(f"{p.tool_name}={p.content}" for p in returns)
            return
        yield "Let me do that."
        yield {
            i: DeltaToolCall(name=name, json_args=json.dumps(args), tool_call_id=f"call-{i}")
            for i, (name, args) in enumerate(calls)
        }


@pytest.fixture
async def owner(client: httpx.AsyncClient) -> Account:
    return await register(client, "owner")


@pytest.fixture
def tools(state: AppState) -> Tools:
    found = Tools()
    state.tools.register(found.source)
    return found


async def planned_agent(
    client: httpx.AsyncClient, state: AppState, owner: Account, planner: Planner
) -> str:
    """An agent (no skills) on ``planner``'s model; returns its slug."""
    planner.name = name = f"planner:{uuid.uuid4().hex[:8]}"
    state.models.register(name, planner.model())
    slug = f"guarded-{uuid.uuid4().hex[:6]}"
    await create_agent(client, owner, slug, model=name, skills=[])
    return slug


async def stream(
    client: httpx.AsyncClient, account: Account, slug: str, body: dict[str, Any]
) -> list[dict[str, Any]]:
    """The advanced SSE stream of one chat request, as events."""
    response = await client.post(
        f"/v1/agents/{slug}/chat/stream/advanced", json=body, headers=account.headers
    )
    assert response.status_code == 200, response.text
    events, _ = parse_sse(response.text)
    return events  # type: ignore[return-value]


def of_type(events: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [e for e in events if e["type"] == kind]
