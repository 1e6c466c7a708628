"""Streaming transports over the same runs: basic SSE, advanced SSE, WebSocket."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, WebSocket
from starlette.responses import StreamingResponse

from agentstream.auth.deps import CurrentPrincipal, parse_team_id
from agentstream.chat import events as ev
from agentstream.chat.schemas import ChatRequest
from agentstream.chat.service import start_run
from agentstream.kit.errors import AppError
from agentstream.state import StateDep, get_state
from agentstream.streaming.sse import SSE_RESPONSES, sse_response
from agentstream.streaming.ws import CLOSE_UNAUTHORIZED, websocket_session

router = APIRouter(prefix="/v1/agents", tags=["streaming"])


@router.post("/{slug}/chat/stream", response_class=StreamingResponse, responses=SSE_RESPONSES)
async def chat_stream(
    slug: str, body: ChatRequest, principal: CurrentPrincipal, state: StateDep
) -> StreamingResponse:
    """Stream a reply: ``text_delta``* → ``usage`` → ``done`` (or ``error``)."""
    run = await start_run(state, principal, slug, body)
    return sse_response(run, types=ev.BASIC_TYPES, keepalive_s=state.settings.sse_keepalive_s)


@router.post(
    "/{slug}/chat/stream/advanced", response_class=StreamingResponse, responses=SSE_RESPONSES
)
async def chat_stream_advanced(
    slug: str, body: ChatRequest, principal: CurrentPrincipal, state: StateDep
) -> StreamingResponse:
    """Stream every event: memory_context, typing, deltas, tool calls and results, usage, done."""
    run = await start_run(state, principal, slug, body)
    return sse_response(run, keepalive_s=state.settings.sse_keepalive_s)


@router.websocket("/{slug}/ws")
async def agent_websocket(
    websocket: WebSocket,
    slug: str,
    token: Annotated[str | None, Query(max_length=4096)] = None,
    team_id: Annotated[str | None, Query(max_length=64)] = None,
) -> None:
    """The WebSocket protocol of docs/protocol.md."""
    state = get_state(websocket)
    try:
        team_override = parse_team_id(team_id)
    except AppError:
        await websocket.accept()
        await websocket.close(CLOSE_UNAUTHORIZED)
        return
    await websocket_session(websocket, state, slug, token, team_override)
