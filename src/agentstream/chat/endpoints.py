"""``POST /v1/agents/{slug}/chat``: the non-streaming transport over the same run."""

from __future__ import annotations

from fastapi import APIRouter

from agentstream.chat import events as ev
from agentstream.chat.schemas import ChatRequest, ChatResponse
from agentstream.chat.service import ChatPrincipal, start_run
from agentstream.kit.context import current_request_id
from agentstream.kit.errors import AppError
from agentstream.state import StateDep

router = APIRouter(prefix="/v1/agents", tags=["chat"])


class RunFailed(AppError):
    """A run that ended in an ``error`` event, as an HTTP error."""

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


@router.post("/{slug}/chat", response_model=ChatResponse)
async def chat(
    slug: str, body: ChatRequest, principal: ChatPrincipal, state: StateDep
) -> ChatResponse:
    """Send a message and wait for the whole reply."""
    run = await start_run(state, principal, slug, body)
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
    raise AppError()
