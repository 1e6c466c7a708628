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
    created_at: datetime
    finished_at: datetime | None
