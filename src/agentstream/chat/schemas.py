"""Chat request and (non-streaming) response bodies."""

from __future__ import annotations

import uuid
from typing import Any, Literal

from pydantic import BaseModel, Field

from agentstream.chat.events import Usage
from agentstream.kit.schemas import Input, Output

MAX_MESSAGE_CHARS = 10_000


class ChatRequest(Input):
    message: str = Field(min_length=1, max_length=MAX_MESSAGE_CHARS)
    conversation_id: uuid.UUID | None = None
    context: dict[str, Any] | None = None
    on_disconnect: Literal["continue", "cancel"] = "continue"


class ResumeFrame(BaseModel):
    """A WebSocket ``resume`` frame: follow a run of the caller's from ``after``."""

    type: Literal["resume"]
    run_id: uuid.UUID
    after: int = Field(default=0, ge=0)


class ChatResponse(Output):
    response: str
    conversation_id: uuid.UUID
    message_id: uuid.UUID
    usage: Usage
    status: str
    request_id: str
