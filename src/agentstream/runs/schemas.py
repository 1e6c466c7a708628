"""Run bodies."""

from __future__ import annotations

import uuid
from datetime import datetime

from agentstream.kit.schemas import Output
from agentstream.models import RunStatus


class RunPublic(Output):
    id: uuid.UUID
    conversation_id: uuid.UUID
    agent: str
    status: RunStatus
    last_seq: int
    trace_id: str | None = None  # the run's OpenTelemetry trace, when tracing is on
    created_at: datetime
    finished_at: datetime | None
