"""Starting runs for every transport (the one chat gate) and collecting a whole reply."""

from __future__ import annotations

import functools
import uuid

from agentstream.approvals.schemas import DecisionIn
from agentstream.auth.service import Principal
from agentstream.chat import events as ev
from agentstream.chat.flow import execute
from agentstream.chat.prepare import prepare
from agentstream.chat.schemas import ChatRequest, ChatResponse, PendingApproval
from agentstream.db import transaction
from agentstream.kit.context import current_request_id
from agentstream.kit.errors import AppError, Unavailable
from agentstream.models import Role
from agentstream.observability import tracing
from agentstream.ratelimit.deps import count_chat_message
from agentstream.runs.registry import Run
from agentstream.runs.service import get_owned
from agentstream.state import AppState


async def start_run(
    state: AppState,
    principal: Principal,
    slug: str,
    request: ChatRequest,
    *,
    paused_run: uuid.UUID | None = None,
) -> Run:
    """The chat gate, then the run: members only, within the per-user chat limit (every
    transport counts); prepare (raising domain errors before anything streams) and start.

    With tracing on, the run's span starts here, before its rows are written (they keep its
    trace id); the run's task inherits it as its current span, and ends it."""
    principal.require(Role.member)
    if state.runs.closing:
        raise Unavailable("The server is shutting down; retry shortly.")
    await count_chat_message(state, principal.user_id)
    slot = await state.runs.reserve(principal.user_id)
    span = state.tracing.start_run(slug)
    with tracing.active(span):
        try:
            prepared = await prepare(state, principal, slug, request, span, paused_run=paused_run)
        except BaseException as error:
            await slot.release()
            if span is not None:
                span.refused(error)
            raise
        produce = functools.partial(execute, state, prepared)
        return state.runs.start(prepared.identity, produce, request.on_disconnect, slot, span)


async def continue_run(
    state: AppState, principal: Principal, run_id: uuid.UUID, decisions: list[DecisionIn]
) -> Run:
    """Decide a paused run's tool calls (``POST /v1/runs/{id}/approvals``) and start the run
    that carries its turn on; it goes on whether or not anyone follows it."""
    async with transaction(state.sessions) as session:
        paused = await get_owned(session, principal, run_id)
    request = ChatRequest(decisions=decisions, on_disconnect="continue")
    return await start_run(state, principal, paused.agent, request, paused_run=run_id)


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
    pending: list[PendingApproval] = []
    async for batch in run.subscribe():
        for event in batch:
            if isinstance(event, ev.TextDelta):
                text.append(event.content)
            elif isinstance(event, ev.ApprovalRequired):
                pending.append(PendingApproval.model_validate(event.dump()))
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
                    pending_approvals=pending,
                )
    raise AppError()  # unreachable: every run ends with done or error
