"""Usage report bodies."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from pydantic import BaseModel, Field


class Totals(BaseModel):
    runs: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0


class AgentTotals(Totals):
    agent: str | None


class ModelTotals(Totals):
    model: str


class DayTotals(Totals):
    """One agent's usage on one UTC day (``agent`` is null for a deleted agent)."""

    day: date
    agent: str | None


class UserTotals(Totals):
    """One user's usage (null fields: a deleted user)."""

    user_id: uuid.UUID | None
    email: str | None
    display_name: str | None


class UsageReport(BaseModel):
    start: datetime
    end: datetime
    total: Totals
    by_agent: list[AgentTotals]
    by_model: list[ModelTotals]
    by_day: list[DayTotals] = Field(
        description="Per UTC day and agent, oldest first; days without usage are left out."
    )
    by_user: list[UserTotals] = Field(
        description="Per user, most tokens first: every member for admins and owners, "
        "only the caller's own totals for other roles."
    )
