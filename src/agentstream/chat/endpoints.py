"""``POST /v1/agents/{slug}/chat``: the non-streaming transport over the same run."""

from __future__ import annotations

from fastapi import APIRouter

from agentstream.auth.deps import CurrentPrincipal
from agentstream.chat.schemas import ChatRequest, ChatResponse
from agentstream.chat.service import collect_reply, start_run
from agentstream.state import StateDep

router = APIRouter(prefix="/v1/agents", tags=["chat"])


@router.post("/{slug}/chat", response_model=ChatResponse)
async def chat(
    slug: str, body: ChatRequest, principal: CurrentPrincipal, state: StateDep
) -> ChatResponse:
    """Send a message and wait for the whole reply."""
    return await collect_reply(await start_run(state, principal, slug, body))
