"""Usage report bodies."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel


class Totals(BaseModel):
    runs: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0


class AgentTotals(Totals):
    agent: str | None


class ModelTotals(Totals):
    model: str


class UsageReport(BaseModel):
    start: datetime
    end: datetime
    total: Totals
    by_agent: list[AgentTotals]
    by_model: list[ModelTotals]
