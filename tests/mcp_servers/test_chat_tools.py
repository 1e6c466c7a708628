"""Agents calling MCP tools in a chat: ``<server>__<tool>`` calls and results stream and the
reply goes on; a server that is down, slow or failing gives the model a tool error and the run
completes; results are capped; cancel during a slow call ends the run and the MCP call."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic_ai.messages import ModelMessage, ModelRequest, RetryPromptPart, ToolReturnPart
from pydantic_ai.models.function import AgentInfo, DeltaToolCall, DeltaToolCalls, FunctionModel

from agentstream.mcp_servers.toolsets import RESULT_LIMIT
from agentstream.state import AppState
from tests.factories import Account, create_agent, register
from tests.fakes.mcp_server import ToolServer, refused_url, serve_mcp, silent_url
from tests.live import serve_in_loop
from tests.mcp_servers.conftest import register_server
from tests.runs.test_runs import open_stream, take
from tests.streaming.scripted import parse_sse
from tests.streaming.test_ui_protocols import agui_body, agui_events, ui_body, ui_chunks
from tests.streaming.wsclient import receive_until_terminal, ws_connect


@dataclass
class CallsTool:
    """A model that calls one tool, then answers with what the tool returned."""

    tool: str
    args: dict[str, Any] = field(default_factory=dict)
    seen: list[list[ModelMessage]] = field(default_factory=list)
    tool_names: list[list[str]] = field(default_factory=list)

    def model(self) -> FunctionModel:
        return FunctionModel(stream_function=self._stream, model_name="calls-tool")

    async def _stream(
        self, messages: list[ModelMessage], info: AgentInfo
    ) -> AsyncIterator[str | DeltaToolCalls]:
        self.seen.append(list(messages))
        self.tool_names.append([t.name for t in info.function_tools])
        last = messages[-1]
        answers = (
            [p for p in last.parts if isinstance(p, ToolReturnPart | RetryPromptPart)]
            if isinstance(last, ModelRequest)
            else []
        )
        if not answers:
            args = json.dumps(self.args)
            yield {0: DeltaToolCall(name=self.tool, json_args=args, tool_call_id="call-1")}
            return
        yield "The tool said: "
        content = answers[0].content
        yield content if isinstance(content, str) else json.dumps(content)


MakeAgent = Callable[..., Any]


@pytest.fixture
def tool_agent(client: httpx.AsyncClient, state: AppState, owner: Account) -> MakeAgent:
    """An agent on a ``CallsTool`` model that may use the given MCP servers (no skills)."""

    async def make(model: CallsTool | Talks, servers: list[str], slug: str = "bot") -> str:
        name = f"calls:{uuid.uuid4().hex[:8]}"
        state.models.register(name, model.model())
        await create_agent(client, owner, slug, model=name, skills=[], mcp_servers=servers)
        return slug

    return make


async def _advanced(client: httpx.AsyncClient, owner: Account, slug: str) -> list[dict[str, Any]]:
    response = await client.post(
        f"/v1/agents/{slug}/chat/stream/advanced", json={"message": "go"}, headers=owner.headers
    )
    assert response.status_code == 200, response.text
    events, _ = parse_sse(response.text)
    return events


def _of(events: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [e for e in events if e["type"] == kind]


def _text(events: list[dict[str, Any]]) -> str:
    return "".join(e["content"] for e in _of(events, "text_delta"))


async def test_a_tool_call_streams_with_its_result_and_the_reply_goes_on(
    client: httpx.AsyncClient,
    owner: Account,
    mcp_url: str,
    tools: ToolServer,
    tool_agent: MakeAgent,
) -> None:
    await register_server(client, owner, "srv", mcp_url, headers={"Authorization": "Bearer k"})
    model = CallsTool("srv__echo", {"text": "hi"})
    slug = await tool_agent(model, ["srv"])
    events = await _advanced(client, owner, slug)
    assert [e["type"] for e in events] == [
        "memory_context",
        "typing",
        "tool_call",
        "tool_result",
        "text_delta",
        "text_delta",
        "usage",
        "done",
    ]
    call, result = _of(events, "tool_call")[0], _of(events, "tool_result")[0]
    assert (call["tool_name"], call["tool_args"]) == ("srv__echo", {"text": "hi"})
    assert result["tool_call_id"] == call["tool_call_id"]
    assert result["tool_result_content"] == "echo: hi"
    assert _text(events) == "The tool said: echo: hi"
    assert events[-1]["status"] == "complete"
    assert sorted(model.tool_names[0]) == ["srv__echo", "srv__fail", "srv__large", "srv__slow"]
    # The server's headers reached it, decrypted.
    assert tools.headers[-1]["authorization"] == "Bearer k"
    messages = await client.get(
        f"/v1/conversations/{events[-1]['conversation_id']}/messages", headers=owner.headers
    )
    stored = messages.json()["items"][-1]
    assert stored["tool_calls"] == [
        {
            "tool_name": "srv__echo",
            "tool_args": {"text": "hi"},
            "tool_call_id": call["tool_call_id"],
            "tool_result_content": "echo: hi",
        }
    ]


async def test_skills_and_mcp_tools_are_offered_together(
    client: httpx.AsyncClient, owner: Account, state: AppState, mcp_url: str
) -> None:
    await register_server(client, owner, "srv", mcp_url)
    model = CallsTool("srv__echo", {"text": "both"})
    state.models.register("calls:both", model.model())
    await create_agent(client, owner, "both", model="calls:both", mcp_servers=["srv"])
    events = await _advanced(client, owner, "both")
    assert _text(events) == "The tool said: echo: both"
    assert {"load_skill", "read_skill_file", "srv__echo"} <= set(model.tool_names[0])


async def test_a_failing_tool_is_a_tool_error_and_the_run_completes(
    client: httpx.AsyncClient, owner: Account, mcp_url: str, tool_agent: MakeAgent
) -> None:
    await register_server(client, owner, "srv", mcp_url)
    slug = await tool_agent(CallsTool("srv__fail"), ["srv"])
    events = await _advanced(client, owner, slug)
    result = _of(events, "tool_result")[0]
    assert "the tool broke" in result["tool_result_content"]
    assert (events[-1]["type"], events[-1]["status"]) == ("done", "complete")
    assert _text(events).startswith("The tool said: ")


@pytest.mark.parametrize(
    "settings_overrides",
    [{"mcp_allowed_hosts": ["127.0.0.1"], "mcp_timeout_s": 0.5, "memory_extraction": False}],
)
async def test_a_slow_tool_times_out_as_a_tool_error(
    client: httpx.AsyncClient,
    owner: Account,
    mcp_url: str,
    tools: ToolServer,
    tool_agent: MakeAgent,
) -> None:
    await register_server(client, owner, "srv", mcp_url)
    slug = await tool_agent(CallsTool("srv__slow"), ["srv"])
    events = await _advanced(client, owner, slug)
    result = _of(events, "tool_result")[0]
    assert result["tool_result_content"] == (
        "The MCP server 'srv' did not answer within 0.5 seconds."
    )
    assert events[-1]["status"] == "complete"
    await asyncio.wait_for(tools.slow_cancelled.wait(), 5)  # the server's call was ended too


async def test_a_down_server_gives_no_tools_and_the_run_completes(
    client: httpx.AsyncClient, owner: Account, tool_agent: MakeAgent
) -> None:
    with refused_url() as url:
        await register_server(client, owner, "down", url)
        model = CallsTool("down__echo", {"text": "hi"})
        slug = await tool_agent(model, ["down"])
        events = await _advanced(client, owner, slug)
    assert model.tool_names[0] == []
    result = _of(events, "tool_result")[0]
    assert "Unknown tool name: 'down__echo'" in result["tool_result_content"]
    assert events[-1]["status"] == "complete"


@pytest.mark.parametrize(
    "settings_overrides",
    [{"mcp_allowed_hosts": ["127.0.0.1"], "mcp_timeout_s": 0.5, "memory_extraction": False}],
)
async def test_a_server_that_never_answers_costs_one_timeout_and_no_tools(
    client: httpx.AsyncClient, owner: Account, tool_agent: MakeAgent
) -> None:
    with silent_url() as url:
        await register_server(client, owner, "mute", url)
        model = CallsTool("mute__echo", {"text": "hi"})
        slug = await tool_agent(model, ["mute"])
        loop = asyncio.get_running_loop()
        started = loop.time()
        events = await asyncio.wait_for(_advanced(client, owner, slug), 10)
        took = loop.time() - started
    assert model.tool_names[0] == []
    assert events[-1]["status"] == "complete"
    assert took < 3, took  # one 0.5 s connect timeout (and a close), never a hung run


async def test_a_server_that_goes_down_mid_run_is_a_tool_error(
    client: httpx.AsyncClient, owner: Account, state: AppState, tool_agent: MakeAgent
) -> None:
    tools = ToolServer()
    stop = asyncio.Event()

    class StopsServer(CallsTool):
        async def _stream(
            self, messages: list[ModelMessage], info: AgentInfo
        ) -> AsyncIterator[str | DeltaToolCalls]:
            if not self.seen:
                stop.set()
                await stopped.wait()
            async for item in super()._stream(messages, info):
                yield item

    stopped = asyncio.Event()

    async def serve() -> None:
        async with serve_mcp(tools) as url:
            urls.put_nowait(url)
            await stop.wait()
        stopped.set()

    urls: asyncio.Queue[str] = asyncio.Queue()
    server = asyncio.create_task(serve())
    await register_server(client, owner, "srv", await urls.get())
    slug = await tool_agent(StopsServer("srv__echo", {"text": "hi"}), ["srv"])
    events = await _advanced(client, owner, slug)
    await server
    result = _of(events, "tool_result")[0]
    assert result["tool_result_content"].startswith("The MCP server 'srv' ")
    assert events[-1]["status"] == "complete"


@dataclass
class Talks:
    """A model that only talks (and says which tools it was offered)."""

    tool_names: list[list[str]] = field(default_factory=list)

    def model(self) -> FunctionModel:
        return FunctionModel(stream_function=self._stream, model_name="talks")

    async def _stream(self, messages: list[ModelMessage], info: AgentInfo) -> AsyncIterator[str]:
        self.tool_names.append([t.name for t in info.function_tools])
        yield "just talking"


async def test_listed_tools_are_kept_so_a_server_that_went_away_answers_with_errors(
    client: httpx.AsyncClient, owner: Account, tool_agent: MakeAgent
) -> None:
    tools = ToolServer()
    async with serve_mcp(tools) as url:
        await register_server(client, owner, "srv", url)
        first = await tool_agent(CallsTool("srv__echo", {"text": "one"}), ["srv"], "first")
        events = await _advanced(client, owner, first)
        assert _of(events, "tool_result")[0]["tool_result_content"] == "echo: one"
        # A run that calls no tool does not connect: the tools were listed on this worker.
        talks = Talks()
        quiet = await tool_agent(talks, ["srv"], "quiet")
        requests = tools.requests
        assert _text(await _advanced(client, owner, quiet)) == "just talking"
        assert "srv__echo" in talks.tool_names[0]
        assert tools.requests == requests
    second = CallsTool("srv__echo", {"text": "two"})
    events = await _advanced(client, owner, await tool_agent(second, ["srv"], "second"))
    assert "srv__echo" in second.tool_names[0]  # still offered, from the last listing
    result = _of(events, "tool_result")[0]
    assert result["tool_result_content"] == "The MCP server 'srv' is unavailable."
    assert events[-1]["status"] == "complete"


async def test_a_large_result_is_truncated_with_a_note(
    client: httpx.AsyncClient, owner: Account, mcp_url: str, tool_agent: MakeAgent
) -> None:
    await register_server(client, owner, "srv", mcp_url)
    model = CallsTool("srv__large", {"size": 200_000})
    slug = await tool_agent(model, ["srv"])
    events = await _advanced(client, owner, slug)
    content = _of(events, "tool_result")[0]["tool_result_content"]
    assert content.startswith("x" * RESULT_LIMIT + "\n\n[Truncated: ")
    assert "200000 bytes" in content
    seen = model.seen[-1][-1].parts[0]
    assert isinstance(seen, ToolReturnPart)
    assert seen.content == content  # the model's copy too
    assert events[-1]["status"] == "complete"


async def test_cancel_during_a_slow_tool_ends_the_run_and_the_mcp_call(
    app: FastAPI,
    client: httpx.AsyncClient,
    owner: Account,
    mcp_url: str,
    tools: ToolServer,
    tool_agent: MakeAgent,
) -> None:
    await register_server(client, owner, "srv", mcp_url)
    slug = await tool_agent(CallsTool("srv__slow"), ["srv"])
    async with serve_in_loop(app) as base, httpx.AsyncClient(base_url=base, timeout=30) as live:
        path = f"/v1/agents/{slug}/chat/stream/advanced"
        async with open_stream(live, owner, "POST", path, json={"message": "go"}) as source:
            run_id = source.response.headers["X-Run-Id"]
            await asyncio.wait_for(tools.slow_started.wait(), 10)
            loop = asyncio.get_running_loop()
            asked = loop.time()
            cancelled = await live.post(f"/v1/runs/{run_id}/cancel", headers=owner.headers)
            assert cancelled.status_code == 202
            events = await asyncio.wait_for(take(source), 5)
            took = loop.time() - asked
    assert (events[-1]["type"], events[-1]["status"]) == ("done", "cancelled")
    assert took < 2, took  # promptly: not the 5 s MCP timeout
    await asyncio.wait_for(tools.slow_cancelled.wait(), 5)  # the MCP call was closed


async def test_vercel_and_agui_carry_mcp_tool_calls(
    client: httpx.AsyncClient, owner: Account, mcp_url: str, tool_agent: MakeAgent
) -> None:
    await register_server(client, owner, "srv", mcp_url)
    slug = await tool_agent(CallsTool("srv__echo", {"text": "ui"}), ["srv"])
    ui = await client.post(
        f"/v1/agents/{slug}/chat/ui", json=ui_body("chat-mcp", "go"), headers=owner.headers
    )
    chunks = [c for c in ui_chunks(ui.text) if isinstance(c, dict)]
    available = next(c for c in chunks if c["type"] == "tool-input-available")
    assert (available["toolName"], available["input"]) == ("srv__echo", {"text": "ui"})
    output = next(c for c in chunks if c["type"] == "tool-output-available")
    assert output["output"] == "echo: ui"
    agui = await client.post(
        f"/v1/agents/{slug}/chat/ag-ui",
        json=agui_body("thread-mcp", "go"),
        headers=owner.headers | {"Accept": "text/event-stream"},
    )
    events = agui_events(agui.text)
    start = next(e for e in events if e["type"] == "TOOL_CALL_START")
    assert start["toolCallName"] == "srv__echo"
    result = next(e for e in events if e["type"] == "TOOL_CALL_RESULT")
    assert result["content"] == "echo: ui"
    assert events[-1]["type"] == "RUN_FINISHED"


async def test_websocket_carries_mcp_tool_calls(
    app: FastAPI,
    client: httpx.AsyncClient,
    owner: Account,
    mcp_url: str,
    tool_agent: MakeAgent,
) -> None:
    await register_server(client, owner, "srv", mcp_url)
    slug = await tool_agent(CallsTool("srv__echo", {"text": "ws"}), ["srv"])
    async with ws_connect(app, f"/v1/agents/{slug}/ws?token={owner.access_token}") as ws:
        assert (await ws.receive_json())["type"] == "auth_ok"
        await ws.send_json({"type": "message", "content": "go"})
        events = await receive_until_terminal(ws)
    call, result = _of(events, "tool_call")[0], _of(events, "tool_result")[0]
    assert (call["tool_name"], call["tool_args"]) == ("srv__echo", {"text": "ws"})
    assert result["tool_result_content"] == "echo: ws"
    assert _text(events) == "The tool said: echo: ws"
    assert events[-1]["status"] == "complete"


async def test_another_teams_agent_never_gets_the_tools(
    client: httpx.AsyncClient,
    owner: Account,
    state: AppState,
    mcp_url: str,
    tools: ToolServer,
) -> None:
    await register_server(client, owner, "srv", mcp_url)
    other = await register(client, "other")
    await register_server(client, other, "srv", "http://127.0.0.1:9/mcp")  # same name, theirs
    model = CallsTool("srv__echo", {"text": "steal"})
    state.models.register("calls:other", model.model())
    await create_agent(client, other, "theirs", model="calls:other", skills=[], mcp_servers=["srv"])
    events = await _advanced(client, other, "theirs")
    assert model.tool_names[0] == []  # their own srv is down; ours is never used
    assert tools.headers == []
    assert events[-1]["status"] == "complete"
