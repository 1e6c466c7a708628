"""The Vercel AI SDK UI message stream (protocol v1, ``ai`` 5.x/6.x) over a run.

Encoding is pydantic-ai's ``VercelAIEventStream`` fed with the run's events as native agent
events (``streaming.native``); request parsing is its ``SubmitMessage`` model.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Literal

from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from pydantic_ai.messages import CustomEvent
from pydantic_ai.ui.vercel_ai import VercelAIEventStream
from pydantic_ai.ui.vercel_ai.request_types import (
    SubmitMessage,
    TextUIPart,
    ToolApprovalResponded,
    ToolApprovalRespondedPart,
)
from pydantic_ai.ui.vercel_ai.response_types import (
    BaseChunk,
    StartChunk,
    ToolApprovalRequestChunk,
)
from starlette.responses import StreamingResponse

from agentstream.chat.schemas import ChatRequest, Multitask
from agentstream.kit.errors import NotFound
from agentstream.runs.reading import Readable
from agentstream.streaming.native import ApprovalEvent, chat_request, invalid, protocol_response


class UIChatRequest(SubmitMessage):
    """What ``DefaultChatTransport`` posts (``{id, messages, trigger, ...}``) plus our options,
    sent through the transport's ``body``. Only ``submit-message`` is supported: the server
    holds the history, so there is no client-side message list to regenerate from."""

    # A stop() in the SDK aborts the fetch: by default that cancels the run (spec).
    on_disconnect: Literal["continue", "cancel"] = "cancel"
    context: dict[str, Any] | None = None
    multitask: Multitask | None = None

    def chat_request(self) -> ChatRequest:
        """The new user turn (the last message's text parts) as a chat request; the chat id
        names the conversation. After ``addToolApprovalResponse`` the last message is the
        paused assistant reply, whose responded approvals are the decisions that continue it.
        Invalid input is the ordinary 422 ``validation_error``."""
        last = self.messages[-1] if self.messages else None
        if last is not None and last.role == "assistant":
            return self._decisions(last.parts)
        if last is None or last.role != "user":
            raise invalid("messages", "The last message must be the user's new message.")
        text = "".join(p.text for p in last.parts if isinstance(p, TextUIPart))
        return chat_request(
            text,
            client_id=self.id,
            on_disconnect=self.on_disconnect,
            context=self.context,
            multitask=self.multitask,
        )

    def _decisions(self, parts: list[Any]) -> ChatRequest:
        responded = [
            p.approval
            for p in parts
            if isinstance(p, ToolApprovalRespondedPart)
            and isinstance(p.approval, ToolApprovalResponded)
        ]
        if not responded:
            raise invalid("messages", "The last message must be the user's new message.")
        decisions: list[dict[str, Any]] = []
        for approval in responded:
            try:
                approval_id = uuid.UUID(approval.id)
            except ValueError:
                # An id the SDK made up, not one of ours: it names no approval here.
                raise NotFound("approval") from None
            decisions.append(
                {
                    "approval_id": approval_id,
                    "approved": approval.approved,
                    "reason": approval.reason,
                }
            )
        try:
            return ChatRequest.model_validate(
                {
                    "decisions": decisions,
                    "client_id": self.id,
                    "on_disconnect": self.on_disconnect,
                    "context": self.context,
                }
            )
        except ValidationError as exc:
            raise RequestValidationError(
                [dict(e) | {"loc": ("body", *e["loc"])} for e in exc.errors()]
            ) from exc


@dataclass
class _RunStream(VercelAIEventStream[None, Any]):
    """The library's encoder, with the run named in the ``start`` chunk's metadata (the AI SDK
    keeps it on the assistant message), so a client learns its conversation id."""

    conversation_id: uuid.UUID | None = None

    async def before_stream(self) -> AsyncIterator[BaseChunk]:
        metadata = {"conversation_id": str(self.conversation_id), "run_id": self.server_message_id}
        yield StartChunk(message_id=self.server_message_id, message_metadata=metadata)

    async def handle_custom_event(self, event: CustomEvent) -> AsyncIterator[BaseChunk]:
        if isinstance(event, ApprovalEvent) and event.tool_call_id is not None:
            # The AI SDK's own approval part; its id is our approval's, which the client's
            # ``addToolApprovalResponse`` sends back.
            yield ToolApprovalRequestChunk(
                approval_id=event.approval_id, tool_call_id=event.tool_call_id
            )
            return
        async for chunk in super().handle_custom_event(event):
            yield chunk


def vercel_response(run: Readable, *, owner: bool) -> StreamingResponse:
    """The run as a UI message stream (``x-vercel-ai-ui-message-stream: v1``), from its start.

    The assistant message's id is the run's (= our stored message's) id.
    """
    stream = _RunStream(
        sdk_version=6, server_message_id=str(run.id), conversation_id=run.conversation_id
    )
    return protocol_response(stream, run, owner=owner)
