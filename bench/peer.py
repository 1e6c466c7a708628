"""The honest peer: what a user would write instead of agentstream. pydantic-ai served straight
from Starlette on uvicorn, over the same token source as agentstream (its offline demo model),
with no auth and no database.

- ``POST /stream``: one ``Agent.iter`` per request, each agent event an SSE ``data:`` frame
  (text as ``{"type":"text_delta","content":...}``), then ``{"type":"done",...}``.
- ``POST /vercel``: pydantic-ai's own ``VercelAIAdapter.dispatch_request`` (Vercel AI UI
  message stream); its body is a Vercel AI ``submit-message`` request (``VERCEL_BODY``).

Both take ``?max_tokens=N`` to cap the reply, as agentstream's agent setting does.
``--model openai:<name>`` serves pydantic-ai's stock ``OpenAIChatModel`` against
``OPENAI_BASE_URL`` instead (the provider path, issue 19), as a user would build it.
``--mcp URL`` gives the agent that MCP server's tools (pydantic-ai's ``MCPToolset``, the MCP
scenario of ``bench/mcp.py``): connected by each run, as ``Agent.iter`` does with a toolset
nobody entered, or with ``--mcp-session open`` entered once for the app's lifetime (one
session shared by every run, what pydantic-ai's docs suggest for a long-lived agent).

Run: ``python -m bench.peer --port 8300 --delay-ms 0 [--model openai:story]``.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn
from pydantic_ai import Agent
from pydantic_ai.mcp import MCPToolset
from pydantic_ai.messages import PartDeltaEvent, PartStartEvent, TextPart, TextPartDelta
from pydantic_ai.models import Model
from pydantic_ai.models.openai import OpenAIChatModel
from pydantic_ai.providers.openai import OpenAIProvider
from pydantic_ai.settings import ModelSettings
from pydantic_ai.ui.vercel_ai import VercelAIAdapter
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from agentstream.llm.demo import build_demo_model

PROMPT = "tell me a long story"
# A Vercel AI SDK ``useChat`` submit with one user message: the same prompt.
VERCEL_BODY = {
    "trigger": "submit-message",
    "id": "bench-chat",
    "messages": [{"id": "bench-user", "role": "user", "parts": [{"type": "text", "text": PROMPT}]}],
}


def _frame(event: dict[str, object]) -> bytes:
    return b"data: " + json.dumps(event, separators=(",", ":")).encode() + b"\n\n"


def _settings(request: Request) -> ModelSettings | None:
    cap = request.query_params.get("max_tokens")
    return ModelSettings(max_tokens=int(cap)) if cap else None


def _model(name: str | None, delay_ms: float) -> Model:
    if name is None:
        return build_demo_model(delay_ms)
    provider, _, model_name = name.partition(":")
    if provider != "openai":
        raise SystemExit(f"the peer serves the demo model or openai:<name>, not {name!r}")
    client = OpenAIProvider(
        base_url=os.environ["OPENAI_BASE_URL"], api_key=os.environ.get("OPENAI_API_KEY", "peer")
    )
    return OpenAIChatModel(model_name, provider=client)


def build_app(
    delay_ms: float,
    model_name: str | None = None,
    mcp_url: str | None = None,
    mcp_session: str = "run",
) -> Starlette:
    model = _model(model_name, delay_ms)
    toolsets = [MCPToolset[None](mcp_url)] if mcp_url else None
    agent: Agent[None, str | None] = Agent(model, output_type=[str, type(None)], toolsets=toolsets)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if mcp_session == "open":
            async with agent:  # its toolsets stay connected until shutdown
                yield
        else:
            yield

    async def events(prompt: str, settings: ModelSettings | None) -> AsyncIterator[bytes]:
        async with agent.iter(prompt, model_settings=settings) as run:
            async for node in run:
                if Agent.is_model_request_node(node) or Agent.is_call_tools_node(node):
                    async with node.stream(run.ctx) as stream:
                        async for event in stream:
                            if isinstance(event, PartStartEvent) and isinstance(
                                event.part, TextPart
                            ):
                                yield _frame({"type": "text_delta", "content": event.part.content})
                            elif isinstance(event, PartDeltaEvent) and isinstance(
                                event.delta, TextPartDelta
                            ):
                                yield _frame(
                                    {"type": "text_delta", "content": event.delta.content_delta}
                                )
                            else:
                                yield _frame({"type": event.event_kind})
            usage = run.usage
            yield _frame(
                {
                    "type": "done",
                    "status": "complete",
                    "usage": {
                        "input_tokens": usage.input_tokens,
                        "output_tokens": usage.output_tokens,
                    },
                }
            )

    async def stream(request: Request) -> StreamingResponse:
        body = await request.json()
        return StreamingResponse(
            events(str(body["message"]), _settings(request)),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    async def vercel(request: Request) -> Response:
        return await VercelAIAdapter.dispatch_request(
            request, agent=agent, model=model, model_settings=_settings(request)
        )

    return Starlette(
        routes=[
            Route("/stream", stream, methods=["POST"]),
            Route("/vercel", vercel, methods=["POST"]),
        ],
        lifespan=lifespan,
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--delay-ms", type=float, default=0.0)
    parser.add_argument("--model", default=None, help="openai:<name> (default: the demo model)")
    parser.add_argument("--mcp", default=None, help="an MCP server's URL (its tools)")
    parser.add_argument("--mcp-session", choices=("run", "open"), default="run")
    args = parser.parse_args()
    app = build_app(args.delay_ms, args.model, args.mcp, args.mcp_session)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
