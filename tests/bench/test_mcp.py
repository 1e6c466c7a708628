"""The MCP bench: the upstream's ``tool-call`` model calls the first tool it is offered once a
turn, the pydantic-ai peer calls a real MCP server's tool through it (a toolset per run or one
open session), and the report states what agentstream adds per call."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from bench.peer import build_app
from bench.report_mcp import mcp_table
from bench.upstream import TOOL_MODEL, _Connection
from tests.fakes.mcp_server import ToolServer, serve_mcp


@pytest.fixture
async def upstream() -> AsyncIterator[str]:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(_Connection, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/v1"
    finally:
        server.close()


def _frames(body: str) -> list[str]:
    return [f.removeprefix("data: ") for f in body.split("\n\n") if f.startswith("data: ")]


async def _completion(base_url: str, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    tool = {"type": "function", "function": {"name": "srv__echo", "parameters": {}}}
    body = {"model": TOOL_MODEL, "stream": True, "messages": messages, "tools": [tool]}
    async with httpx.AsyncClient() as http:
        response = await http.post(base_url + "/chat/completions", json=body)
    frames = _frames(response.text)
    assert frames[-1] == "[DONE]"
    return [json.loads(f) for f in frames[:-1]]


async def test_tool_call_model_calls_the_offered_tool_then_answers_its_result(
    upstream: str,
) -> None:
    asked = [{"role": "user", "content": "go"}]
    first = await _completion(upstream, asked)
    deltas = [c["choices"][0]["delta"] for c in first]
    calls = [call for d in deltas for call in d.get("tool_calls") or []]
    assert calls[0]["function"]["name"] == "srv__echo"
    assert "".join(c["function"]["arguments"] for c in calls) == '{"text":"hello"}'
    assert first[-1]["choices"][0]["finish_reason"] == "tool_calls"

    answered = [
        *asked,
        {"role": "assistant", "tool_calls": [{"id": "call_bench", "type": "function"}]},
        {"role": "tool", "tool_call_id": "call_bench", "content": "hello"},
    ]
    second = await _completion(upstream, answered)
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in second)
    assert text == "The tool said hello."
    assert second[-1]["choices"][0]["finish_reason"] == "stop"


@pytest.mark.usefixtures("allow_model_requests")
@pytest.mark.parametrize("session", ["run", "open"])
async def test_peer_calls_the_mcp_tool_once_per_turn(
    upstream: str, session: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", upstream)
    monkeypatch.setenv("OPENAI_API_KEY", "bench")
    tools = ToolServer()
    async with serve_mcp(tools) as mcp_url:
        app = build_app(0, f"openai:{TOOL_MODEL}", mcp_url, session)
        transport = httpx.ASGITransport(app=app)
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=transport, base_url="http://peer") as http,
        ):
            turns = [await http.post("/stream", json={"message": "go"}) for _ in range(2)]
    for turn in turns:
        frames = [json.loads(f) for f in _frames(turn.text)]
        kinds = [f["type"] for f in frames]
        assert kinds.count("function_tool_call") == 1
        assert kinds.count("function_tool_result") == 1
        text = "".join(f["content"] for f in frames if f["type"] == "text_delta")
        assert text == "The tool said hello."
        assert frames[-1]["status"] == "complete"
    assert len(tools.headers) == 2  # the MCP server ran echo once per turn


def test_report_states_what_agentstream_adds_per_call_over_each_peer() -> None:
    def side(turns_per_s: float, cpu_ms: float, failed: int = 0) -> dict[str, Any]:
        return {
            "turns_per_s": turns_per_s,
            "cpu_per_turn_s": cpu_ms / 1000,
            "mcp_cpu_per_turn_s": 0.004,
            "failed": failed,
        }

    results = {
        "mcp:1:sqlite": side(40.0, 12.5),
        "mcp:1:peer": side(50.0, 10.0),
        "mcp:1:peer-open": side(80.0, 6.0, failed=1),
    }
    rows = {line.split(" | ")[0].lstrip("| "): line for line in mcp_table(results).splitlines()}
    assert (
        rows["agentstream, SQLite"] == "| agentstream, SQLite | 1 | 40.0 | 12.50 ms | — | 4.00 ms |"
    )
    assert rows["pydantic-ai bare, toolset per run"].endswith("| 10.00 ms | +2.50 ms | 4.00 ms |")
    assert "80.0 (1 failed)" in rows["pydantic-ai bare, one open session"]
    assert rows["pydantic-ai bare, one open session"].endswith("| +6.50 ms | 4.00 ms |")
    assert mcp_table({}) == ""
