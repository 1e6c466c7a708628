"""The typed events of a chat run: one union that every transport encodes."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from agentstream.models import MessageStatus

ErrorCode = Literal[
    "agent_not_found",
    "agent_inactive",
    "conversation_not_found",
    "rate_limited",
    "invalid_message",
    "busy",
    "model_error",
    "internal_error",
    "unauthorized",
    "forbidden",
    "validation_error",
]


class Event(BaseModel):
    """Base of every event: frozen, serialised without inapplicable fields."""

    model_config = ConfigDict(frozen=True)

    def dump_json(self) -> bytes:
        """One-line JSON with inapplicable (``None``) fields omitted."""
        return self.__pydantic_serializer__.to_json(self, exclude_none=True)

    def dump(self) -> dict[str, Any]:
        """A JSON-ready dict with inapplicable fields omitted."""
        return self.model_dump(mode="json", exclude_none=True)


class Usage(BaseModel):
    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0
    model: str


class MemoryContext(Event):
    type: Literal["memory_context"] = "memory_context"
    memory_count: int


class Typing(Event):
    type: Literal["typing"] = "typing"


class TextDelta(Event):
    type: Literal["text_delta"] = "text_delta"
    content: str
    conversation_id: uuid.UUID | None = None


class ToolCall(Event):
    type: Literal["tool_call"] = "tool_call"
    tool_name: str
    tool_args: dict[str, Any]
    tool_call_id: str


class ToolResult(Event):
    type: Literal["tool_result"] = "tool_result"
    tool_name: str
    tool_call_id: str
    tool_result_content: str


class UsageEvent(Event):
    type: Literal["usage"] = "usage"
    usage: Usage


class Done(Event):
    type: Literal["done"] = "done"
    conversation_id: uuid.UUID
    message_id: uuid.UUID
    usage: Usage
    status: Literal[MessageStatus.complete, MessageStatus.cancelled, MessageStatus.interrupted]
    content: str | None = None


class Error(Event):
    type: Literal["error"] = "error"
    content: str
    error_code: ErrorCode
    conversation_id: uuid.UUID | None = None
    message_id: uuid.UUID | None = None


class AuthOk(Event):
    type: Literal["auth_ok"] = "auth_ok"
    user_id: uuid.UUID | None = None
    team_id: uuid.UUID | None = None


class Pong(Event):
    type: Literal["pong"] = "pong"


ChatEvent = Annotated[
    MemoryContext | Typing | TextDelta | ToolCall | ToolResult | UsageEvent | Done | Error,
    Field(discriminator="type"),
]
TERMINAL_TYPES = frozenset({"done", "error"})
