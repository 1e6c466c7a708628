"""Conversation and message bodies."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from agentstream.approvals.schemas import ApprovalPublic
from agentstream.kit.schemas import Output
from agentstream.models import MessageRole, MessageStatus


class ConversationPublic(Output):
    id: uuid.UUID
    agent_id: uuid.UUID
    title: str
    created_at: datetime
    updated_at: datetime


class ConversationDetail(ConversationPublic):
    """One conversation, with the tool calls of its that waited for approval."""

    pending_approvals: list[ApprovalPublic]  # what its owner may decide now
    approvals: list[ApprovalPublic]  # every one, with its decision (who, when, how, why)


class ToolCallRecord(BaseModel):
    """One tool call of an assistant message, with its result."""

    model_config = ConfigDict(extra="ignore")

    tool_name: str
    tool_args: dict[str, Any]
    tool_call_id: str
    tool_result_content: str | None = None


class MessagePublic(Output):
    id: uuid.UUID
    role: MessageRole
    content: str
    status: MessageStatus
    tool_calls: list[ToolCallRecord]
    usage: dict[str, Any] | None
    model: str | None
    created_at: datetime
