"""Approval bodies: decisions in, pending and decided tool calls out."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import Field

from agentstream.kit.schemas import Input, Output
from agentstream.models import ApprovalStatus

MAX_DECISIONS = 100


class DecisionIn(Input):
    """The owner's decision on one tool call that waits."""

    approval_id: uuid.UUID
    approved: bool
    reason: str | None = Field(default=None, max_length=1000)


Decisions = list[DecisionIn]


class ApprovalsIn(Input):
    """``POST /v1/runs/{id}/approvals``: a decision for every call the paused turn waits on."""

    decisions: Decisions = Field(min_length=1, max_length=MAX_DECISIONS)


class ContinuationOut(Output):
    """The run that carries the turn on (follow it with ``GET /v1/runs/{run_id}/events``)."""

    run_id: uuid.UUID
    status: str = "running"


class ApprovalPublic(Output):
    """A tool call that waits for approval, or how it was decided."""

    approval_id: uuid.UUID
    run_id: uuid.UUID
    message_id: uuid.UUID
    tool_call_id: str
    tool_name: str
    tool_args: dict[str, Any]
    status: ApprovalStatus
    approved: bool | None = None  # null while pending
    decided_by: uuid.UUID | None = None
    decided_at: datetime | None = None
    reason: str | None = None
    created_at: datetime
    expires_at: datetime
