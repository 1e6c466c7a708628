"""Starting runs for any transport, and the chat rate limit."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from agentstream.auth.deps import MemberPrincipal
from agentstream.auth.service import Principal
from agentstream.chat.flow import prepare
from agentstream.chat.runs import Run
from agentstream.chat.schemas import ChatRequest
from agentstream.ratelimit.deps import enforce
from agentstream.state import AppState, StateDep


async def start_run(state: AppState, principal: Principal, slug: str, request: ChatRequest) -> Run:
    """Prepare (raising domain errors before anything streams) and start the run's task."""
    prepared = await prepare(state, principal, slug, request)
    return state.runs.start(state, prepared)


async def chat_principal(principal: MemberPrincipal, state: StateDep) -> Principal:
    """A member within their per-user chat limit (every transport counts)."""
    await enforce(state, f"chat:{principal.user.id}", state.settings.rate_limit_chat)
    return principal


ChatPrincipal = Annotated[Principal, Depends(chat_principal)]
