"""The AG-UI protocol over a run: ``RunAgentInput`` in, AG-UI events out.

Encoding is pydantic-ai's ``AGUIEventStream`` fed with the run's events as native agent
events (``streaming.native``); the input is the ``ag_ui`` package's own ``RunAgentInput``.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from ag_ui.core import (
    BaseEvent,
    ResumeEntry,
    RunAgentInput,
    RunErrorEvent,
    RunFinishedInterruptOutcome,
    RunFinishedSuccessOutcome,
    TextInputContent,
    UserMessage,
)
from pydantic import ValidationError
from pydantic_ai.exceptions import UserError
from pydantic_ai.messages import CustomEvent, ToolCallPart
from pydantic_ai.tools import ToolApproved
from pydantic_ai.ui.ag_ui import AGUIEventStream
from pydantic_ai.ui.ag_ui._interrupt import approval_to_interrupt, resume_entry_to_approval
from starlette.responses import StreamingResponse

from agentstream.chat.schemas import ChatRequest
from agentstream.kit.errors import NotFound
from agentstream.runs.reading import Readable
from agentstream.streaming.native import (
    ApprovalEvent,
    RunError,
    chat_request,
    invalid,
    protocol_response,
)


def _decisions(entries: list[ResumeEntry]) -> list[dict[str, Any]]:
    """A ``resume``'s answers to our interrupts (whose ids are our approvals') as decisions;
    the payload is checked by pydantic-ai's own reader of it (422 when malformed)."""
    decisions: list[dict[str, Any]] = []
    for entry in entries:
        try:
            approval_id = uuid.UUID(entry.interrupt_id)
        except ValueError:
            raise NotFound("approval") from None
        try:
            result = resume_entry_to_approval(entry)
        except UserError as exc:
            raise invalid("resume", str(exc)) from None
        payload = entry.payload if isinstance(entry.payload, dict) else {}
        reason = "cancelled" if entry.status == "cancelled" else payload.get("reason")
        approved = isinstance(result, ToolApproved)
        decisions.append({"approval_id": approval_id, "approved": approved, "reason": reason})
    return decisions


def agui_chat_request(body: RunAgentInput) -> ChatRequest:
    """The new user turn (the last message) as a chat request; ``threadId`` names the
    conversation. ``forwardedProps.on_disconnect`` may ask for ``"cancel"``, and
    ``forwardedProps.multitask`` says what happens while the conversation is busy. A run
    with ``resume`` answers the interrupts of a paused one: its decisions continue that turn."""
    props = body.forwarded_props if isinstance(body.forwarded_props, dict) else {}
    if body.resume:
        try:
            return ChatRequest.model_validate(
                {
                    "decisions": _decisions(body.resume),
                    "client_id": body.thread_id,
                    "on_disconnect": props.get("on_disconnect", "continue"),
                }
            )
        except ValidationError as exc:
            raise invalid("resume", str(exc.errors()[0]["msg"])) from None
    last = body.messages[-1] if body.messages else None
    if not isinstance(last, UserMessage):
        raise invalid("messages", "The last message must be the user's new message.")
    if isinstance(last.content, str):
        text = last.content
    else:
        text = "".join(p.text for p in last.content if isinstance(p, TextInputContent))
    return chat_request(
        text,
        client_id=body.thread_id,
        on_disconnect=props.get("on_disconnect", "continue"),
        multitask=props.get("multitask"),
    )


@dataclass
class _RunStream(AGUIEventStream[None, Any]):
    """The library's encoder, with our error code on ``RUN_ERROR`` (its own sets none), and a
    paused reply's approvals as the interrupts of its ``RUN_FINISHED``."""

    _approvals: list[ApprovalEvent] = field(default_factory=list)

    async def handle_custom_event(self, event: CustomEvent) -> AsyncIterator[BaseEvent]:
        if isinstance(event, ApprovalEvent):
            self._approvals.append(event)  # answered with RUN_FINISHED's interrupt outcome
            return
        async for agui_event in super().handle_custom_event(event):
            yield agui_event

    def _build_outcome(self) -> RunFinishedInterruptOutcome | RunFinishedSuccessOutcome | None:
        if not self._approvals:
            return super()._build_outcome()
        # pydantic-ai's interrupt for the call (its message and resume schema), named by our
        # approval's id, which the client's ``resume`` sends back.
        return RunFinishedInterruptOutcome(
            interrupts=[
                approval_to_interrupt(
                    ToolCallPart(a.tool_name or "", a.tool_args, a.tool_call_id or ""), {}
                ).model_copy(update={"id": a.approval_id})
                for a in self._approvals
            ]
        )

    async def on_error(self, error: Exception) -> AsyncIterator[BaseEvent]:
        async for event in super().on_error(error):
            if isinstance(event, RunErrorEvent) and isinstance(error, RunError):
                event.code = error.code
            yield event


def agui_response(run: Readable, body: RunAgentInput, accept: str | None) -> StreamingResponse:
    """The run as AG-UI events: ``RUN_STARTED`` (its ``runId`` is our run's id) … ``RUN_FINISHED``
    or ``RUN_ERROR``, for the client's own ``threadId``."""
    # No ``run_input``: with one the encoder would report the client's runId, not the run's.
    stream = _RunStream(accept=accept, thread_id=body.thread_id, run_id=str(run.id))
    return protocol_response(stream, run, owner=True)
