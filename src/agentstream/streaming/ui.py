"""The Vercel AI SDK UI message stream (protocol v1, ``ai`` 5.x/6.x) over a run.

Encoding is pydantic-ai's ``VercelAIEventStream`` fed with the run's events as native agent
events (``streaming.native``); request parsing is its ``SubmitMessage`` model.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Literal

from pydantic_ai.ui.vercel_ai import VercelAIEventStream
from pydantic_ai.ui.vercel_ai.request_types import SubmitMessage, TextUIPart
from pydantic_ai.ui.vercel_ai.response_types import BaseChunk, StartChunk
from starlette.responses import StreamingResponse

from agentstream.chat.schemas import ChatRequest, Multitask
from agentstream.runs.registry import Readable
from agentstream.streaming.native import chat_request, invalid, protocol_response


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
        names the conversation. Invalid input is the ordinary 422 ``validation_error``."""
        last = self.messages[-1] if self.messages else None
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


@dataclass
class _RunStream(VercelAIEventStream[None, Any]):
    """The library's encoder, with the run named in the ``start`` chunk's metadata (the AI SDK
    keeps it on the assistant message), so a client learns its conversation id."""

    conversation_id: uuid.UUID | None = None

    async def before_stream(self) -> AsyncIterator[BaseChunk]:
        metadata = {"conversation_id": str(self.conversation_id), "run_id": self.server_message_id}
        yield StartChunk(message_id=self.server_message_id, message_metadata=metadata)


def vercel_response(run: Readable, *, owner: bool) -> StreamingResponse:
    """The run as a UI message stream (``x-vercel-ai-ui-message-stream: v1``), from its start.

    The assistant message's id is the run's (= our stored message's) id.
    """
    stream = _RunStream(
        sdk_version=6, server_message_id=str(run.id), conversation_id=run.conversation_id
    )
    return protocol_response(stream, run, owner=owner)
