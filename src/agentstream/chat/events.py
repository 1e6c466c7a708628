"""The typed events of a chat run: one union that every transport encodes."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal, cast, get_args

from pydantic import BaseModel, Field

from agentstream.kit.errors import AppError
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
    "unavailable",
    "interrupted",
    "run_not_found",
    "too_many_runs",
    "run_events_expired",
    "conversation_busy",
    "approval_not_found",
    "approval_already_decided",
]


class Event(BaseModel):
    """Base of every event, serialised without inapplicable fields.

    ``seq`` numbers a run's events (set once, when the run publishes the event; never changed
    after); ``run_id`` and ``conversation_id`` are stamped on the first event each subscriber
    receives.
    """

    type: str
    seq: int | None = None
    run_id: uuid.UUID | None = None
    conversation_id: uuid.UUID | None = None

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
    status: Literal[
        MessageStatus.complete,
        MessageStatus.cancelled,
        MessageStatus.interrupted,
        MessageStatus.awaiting_approval,
    ]
    content: str | None = None


class ApprovalRequired(Event):
    """A tool call that waits for its owner's decision (the run then ends ``awaiting_approval``)."""

    type: Literal["approval_required"] = "approval_required"
    approval_id: uuid.UUID
    tool_call_id: str
    tool_name: str
    tool_args: dict[str, Any]


class Queued(Event):
    """A turn that waits for its conversation's run to end (``multitask: "enqueue"``).

    Its ``run_id`` is the run it waits for, not its own: the event after it names the run.
    """

    type: Literal["queued"] = "queued"
    run_id: uuid.UUID


class Error(Event):
    type: Literal["error"] = "error"
    content: str
    error_code: ErrorCode
    message_id: uuid.UUID | None = None
    # ``conversation_busy``: what the conversation is busy with (``run_id`` or these).
    approval_ids: list[uuid.UUID] | None = None


class AuthOk(Event):
    type: Literal["auth_ok"] = "auth_ok"
    user_id: uuid.UUID | None = None
    team_id: uuid.UUID | None = None


class Pong(Event):
    type: Literal["pong"] = "pong"


ChatEvent = Annotated[
    MemoryContext
    | Queued
    | Typing
    | TextDelta
    | ToolCall
    | ToolResult
    | ApprovalRequired
    | UsageEvent
    | Done
    | Error,
    Field(discriminator="type"),
]
TERMINAL_TYPES = frozenset({"done", "error"})
BASIC_TYPES = frozenset({"queued", "text_delta", "approval_required", "usage", "done", "error"})
"""What the basic SSE endpoint shows of a run."""

# Domain error codes a client may see as-is in an ``error`` event; anything else is internal.
_CLIENT_CODES: frozenset[str] = frozenset(get_args(ErrorCode))
# Where a code of the HTTP error shape is named differently on a stream.
_STREAM_CODES = {"validation_error": "invalid_message", "payload_too_large": "invalid_message"}


def error_code(code: str) -> ErrorCode:
    """The stream ``error_code`` for a domain error's machine code (one table for every
    transport)."""
    code = _STREAM_CODES.get(code, code)
    return cast("ErrorCode", code if code in _CLIENT_CODES else "internal_error")


def app_error(exc: AppError) -> Error:
    """The ``error`` event of a domain error raised before any run started (a WebSocket frame's
    answer); what a busy conversation is busy with comes along from ``details``."""
    details = exc.details or {}
    return Error(
        content=exc.message,
        error_code=error_code(exc.code),
        run_id=details.get("run_id"),
        approval_ids=details.get("approval_ids"),
    )
