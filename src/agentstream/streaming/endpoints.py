"""Streaming transports over the same runs: basic SSE, advanced SSE, WebSocket, and the
standard client protocols (Vercel AI SDK UI message stream, AG-UI)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any, TypeVar

from ag_ui.core import RunAgentInput
from fastapi import APIRouter, Depends, Header, Path, Query, WebSocket
from starlette.responses import Response, StreamingResponse

from agentstream.agents.service import get_by_slug
from agentstream.auth.deps import CurrentPrincipal, parse_team_id
from agentstream.chat import events as ev
from agentstream.chat.schemas import ChatRequest
from agentstream.chat.service import start_run
from agentstream.kit.errors import AppError
from agentstream.kit.priority import setup_first
from agentstream.runs.service import active_for_chat
from agentstream.state import SessionDep, StateDep, get_state
from agentstream.streaming.agui import agui_chat_request, agui_response
from agentstream.streaming.sse import SSE_RESPONSES, sse_response
from agentstream.streaming.ui import UIChatRequest, vercel_response
from agentstream.streaming.ws import CLOSE_UNAUTHORIZED, websocket_session

router = APIRouter(prefix="/v1/agents", tags=["streaming"])
_Endpoint = TypeVar("_Endpoint", bound=Callable[..., Any])


async def _setting_up(_: CurrentPrincipal) -> AsyncIterator[None]:
    # Only once the caller is authenticated: a request with a bad token never counts.
    with setup_first.setup():
        yield


def _new_stream(path: str) -> Callable[[_Endpoint], _Endpoint]:
    """A POST that starts a stream; once authenticated, its setup is served before running
    streams' tokens (kit/priority.py), until the endpoint returns."""
    return router.post(
        path,
        response_class=StreamingResponse,
        responses=SSE_RESPONSES,
        dependencies=[Depends(_setting_up, scope="function")],
    )


@_new_stream("/{slug}/chat/stream")
async def chat_stream(
    slug: str, body: ChatRequest, principal: CurrentPrincipal, state: StateDep
) -> StreamingResponse:
    """Stream a reply: ``text_delta``* → ``usage`` → ``done`` (or ``error``)."""
    run = await start_run(state, principal, slug, body)
    return sse_response(run, types=ev.BASIC_TYPES, keepalive_s=state.settings.sse_keepalive_s)


@_new_stream("/{slug}/chat/stream/advanced")
async def chat_stream_advanced(
    slug: str, body: ChatRequest, principal: CurrentPrincipal, state: StateDep
) -> StreamingResponse:
    """Stream every event: memory_context, typing, deltas, tool calls and results, usage, done."""
    run = await start_run(state, principal, slug, body)
    return sse_response(run, keepalive_s=state.settings.sse_keepalive_s)


@_new_stream("/{slug}/chat/ui")
async def chat_ui(
    slug: str, body: UIChatRequest, principal: CurrentPrincipal, state: StateDep
) -> StreamingResponse:
    """The Vercel AI SDK UI message stream (``useChat`` / ``Chat`` with
    ``DefaultChatTransport``); the chat ``id`` names the conversation."""
    run = await start_run(state, principal, slug, body.chat_request())
    return vercel_response(run, owner=True)


@router.get(
    "/{slug}/chat/ui/{chat_id}/stream",
    response_class=StreamingResponse,
    responses=SSE_RESPONSES | {204: {"description": "No reply is streaming."}},
)
async def chat_ui_resume(
    slug: str,
    chat_id: Annotated[str, Path(max_length=200)],
    principal: CurrentPrincipal,
    state: StateDep,
    session: SessionDep,
) -> Response:
    """The AI SDK's ``resume: true``: the chat's running reply from its start, else 204."""
    agent = await get_by_slug(session, principal, slug)
    stored = await active_for_chat(session, principal, agent, chat_id)
    if stored is None:
        return Response(status_code=204)
    return vercel_response(await state.coordinator.readable(stored), owner=False)


@_new_stream("/{slug}/chat/ag-ui")
async def chat_ag_ui(
    slug: str,
    body: RunAgentInput,
    principal: CurrentPrincipal,
    state: StateDep,
    accept: Annotated[str | None, Header()] = None,
) -> StreamingResponse:
    """AG-UI (``@ag-ui/client``'s ``HttpAgent``); ``threadId`` names the conversation."""
    run = await start_run(state, principal, slug, agui_chat_request(body))
    return agui_response(run, body, accept)


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
