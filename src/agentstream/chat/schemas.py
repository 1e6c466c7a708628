"""Chat request and (non-streaming) response bodies."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

import orjson
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    model_validator,
)

from agentstream.approvals.schemas import MAX_DECISIONS, DecisionIn
from agentstream.chat.events import Usage
from agentstream.kit import jsonenc
from agentstream.kit.schemas import Input, Output, declare_no_nul

MAX_MESSAGE_CHARS = 10_000
MAX_CONTEXT_DEPTH = 32
MAX_CONTEXT_BYTES = 16 * 1024
# A run's event cursor (``Last-Event-ID``, ``?after=``, WebSocket ``after``): 0..2^53, the
# integers every JSON client can hold exactly.
MAX_CURSOR = 2**53


def _decimal(value: object) -> object:
    if isinstance(value, str) and not (value.isascii() and value.isdigit()):
        raise ValueError("must be a whole number in decimal digits")
    return value


# A cursor sent as text (a query parameter or header): decimal digits only, so "+5", "1_0",
# " 5 " or "5.0" are 422 like any other non-integer.
CursorText = Annotated[int, BeforeValidator(_decimal), Field(ge=0, le=MAX_CURSOR)]


def _depth(value: object) -> int:
    """Nesting depth of a JSON value (the context object itself is 1), without recursion."""
    deepest = 0
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        item, level = stack.pop()
        children: list[object] | None = None
        if isinstance(item, dict):
            children = list(item.values())
        elif isinstance(item, list | tuple):
            children = list(item)
        if children is None:
            continue
        deepest = max(deepest, level)
        if deepest > MAX_CONTEXT_DEPTH:
            break  # no need to walk the rest of a hostile document
        stack.extend((child, level + 1) for child in children)
    return deepest


def check_context(context: dict[str, Any] | None) -> dict[str, Any] | None:
    """The client's ``context``: JSON-encodable, depth <= 32, <= 16 KiB encoded.

    Checked here so a bad context is a 422 before anything is stored, rather than a
    failure of the encoder once the turn has been written.
    """
    if context is None:
        return None
    if _depth(context) > MAX_CONTEXT_DEPTH:
        raise ValueError(f"context is nested deeper than {MAX_CONTEXT_DEPTH} levels")
    try:
        encoded = jsonenc.dumps(context)
    except orjson.JSONEncodeError as exc:
        # e.g. an integer beyond 64 bits: pydantic accepts it, the encoder does not.
        raise ValueError(f"context is not encodable as JSON: {exc}") from None
    if len(encoded) > MAX_CONTEXT_BYTES:
        raise ValueError(f"context is larger than {MAX_CONTEXT_BYTES} bytes encoded")
    return context


# What a new message does to a conversation that is still busy (docs/protocol.md, "Busy
# conversations"); a request without one follows its agent's ``settings.multitask``.
Multitask = Literal["reject", "interrupt", "enqueue"]
ChatContext = Annotated[dict[str, Any] | None, AfterValidator(check_context)]
MAX_CLIENT_ID_CHARS = 200  # Conversation.client_id's column size


def _one_of_message_or_decisions(schema: dict[str, Any]) -> None:
    """Say in the document what the validator enforces: exactly one of the two."""
    declare_no_nul(schema)
    schema["oneOf"] = [{"required": ["message"]}, {"required": ["decisions"]}]


class ChatRequest(Input):
    model_config = ConfigDict(
        extra="forbid",
        str_strip_whitespace=True,
        json_schema_extra=_one_of_message_or_decisions,
    )

    message: str | None = Field(default=None, min_length=1, max_length=MAX_MESSAGE_CHARS)
    # Instead of a message: the decisions on a paused turn's tool calls, which continue it.
    decisions: list[DecisionIn] | None = Field(default=None, min_length=1, max_length=MAX_DECISIONS)
    conversation_id: uuid.UUID | None = None
    context: ChatContext = None
    on_disconnect: Literal["continue", "cancel"] = "continue"
    multitask: Multitask | None = None
    # A UI client's chat/thread id (standard client protocols): names the conversation when
    # ``conversation_id`` is not given; see ``conversations.turns.start_turn``.
    client_id: str | None = Field(default=None, min_length=1, max_length=MAX_CLIENT_ID_CHARS)

    @model_validator(mode="after")
    def _message_or_decisions(self) -> ChatRequest:
        if (self.message is None) == (self.decisions is None):
            raise ValueError("send either a message or decisions")
        return self


class ResumeFrame(BaseModel):
    """A WebSocket ``resume`` frame: follow a run of the caller's from ``after``."""

    type: Literal["resume"]
    run_id: uuid.UUID
    after: int = Field(default=0, ge=0, le=MAX_CURSOR, strict=True)  # not 1.0, true or "2"


class PendingApproval(BaseModel):
    """A tool call of the reply that waits for approval (``status: awaiting_approval``)."""

    approval_id: uuid.UUID
    tool_call_id: str
    tool_name: str
    tool_args: dict[str, Any]


class ChatResponse(Output):
    response: str
    conversation_id: uuid.UUID
    message_id: uuid.UUID
    usage: Usage
    status: str
    request_id: str
    pending_approvals: list[PendingApproval] = Field(default_factory=list)
