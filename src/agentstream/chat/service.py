"""Starting runs for any transport, the chat rate limit, and collecting a whole reply."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from agentstream.auth.deps import MemberPrincipal
from agentstream.auth.service import Principal
from agentstream.chat import events as ev
from agentstream.chat.flow import prepare
from agentstream.chat.runs import Run
from agentstream.chat.schemas import ChatRequest, ChatResponse
from agentstream.kit.context import current_request_id
from agentstream.kit.errors import AppError
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


class RunFailed(AppError):
    """A run that ended in an ``error`` event, answered as an HTTP error (no stream to use)."""

    status_code = 503

    def __init__(self, event: ev.Error) -> None:
        self.code = event.error_code
        super().__init__(
            event.content,
            details={
                "conversation_id": str(event.conversation_id),
                "message_id": str(event.message_id),
            },
        )


async def collect_reply(run: Run) -> ChatResponse:
    """Wait for a run's terminal event and return the whole reply."""
    text: list[str] = []
    async for event in run.events():
        if isinstance(event, ev.TextDelta):
            text.append(event.content)
        elif isinstance(event, ev.Error):
            raise RunFailed(event)
        elif isinstance(event, ev.Done):
            return ChatResponse(
                response="".join(text),
                conversation_id=event.conversation_id,
                message_id=event.message_id,
                usage=event.usage,
                status=event.status.value,
                request_id=current_request_id(),
            )
    raise AppError()  # unreachable: every run ends with done or error
