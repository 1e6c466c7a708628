"""Usage: one row per run, and team totals over a date range."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import func, insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from agentstream import tenancy
from agentstream.models import Agent, MessageStatus, UsageLog
from agentstream.tenancy import Caller
from agentstream.usage.schemas import AgentTotals, ModelTotals, Totals, UsageReport


class Billed(Protocol):
    """What a usage row is recorded against."""

    @property
    def team_id(self) -> uuid.UUID: ...

    @property
    def user_id(self) -> uuid.UUID: ...

    @property
    def agent_id(self) -> uuid.UUID: ...

    @property
    def conversation_id(self) -> uuid.UUID: ...


_INSERT_USAGE = insert(UsageLog)


async def record_usage(
    connection: AsyncConnection,
    run: Billed,
    *,
    model: str,
    input_tokens: int,
    output_tokens: int,
    duration_ms: int,
    status: MessageStatus,
) -> None:
    """Insert the usage row of one run (the caller's transaction commits it)."""
    await connection.execute(
        _INSERT_USAGE,
        {
            "team_id": run.team_id,
            "user_id": run.user_id,
            "agent_id": run.agent_id,
            "conversation_id": run.conversation_id,
            "model": model,
            "input_tokens": input_tokens,
            "output_tokens": output_tokens,
            "duration_ms": duration_ms,
            "status": status,
        },
    )


def _totals(row: Any) -> dict[str, int]:
    input_tokens, output_tokens = int(row.input_tokens or 0), int(row.output_tokens or 0)
    return {
        "runs": int(row.runs or 0),
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "total_tokens": input_tokens + output_tokens,
    }


async def report(
    session: AsyncSession, caller: Caller, start: datetime, end: datetime
) -> UsageReport:
    """Totals for the caller's team between ``start`` and ``end``, overall, by agent and model."""
    sums = (
        func.count(UsageLog.id).label("runs"),
        func.sum(UsageLog.input_tokens).label("input_tokens"),
        func.sum(UsageLog.output_tokens).label("output_tokens"),
    )
    window = tenancy.usage_logs(caller).where(
        UsageLog.created_at >= start, UsageLog.created_at < end
    )
    total = (await session.execute(window.with_only_columns(*sums))).one()
    by_agent = await session.execute(
        window.with_only_columns(Agent.slug, *sums)
        .select_from(UsageLog)
        .outerjoin(Agent, Agent.id == UsageLog.agent_id)
        .group_by(Agent.slug)
        .order_by(Agent.slug)
    )
    by_model = await session.execute(
        window.with_only_columns(UsageLog.model, *sums)
        .group_by(UsageLog.model)
        .order_by(UsageLog.model)
    )
    return UsageReport(
        start=start,
        end=end,
        total=Totals(**_totals(total)),
        by_agent=[AgentTotals(agent=row.slug, **_totals(row)) for row in by_agent],
        by_model=[ModelTotals(model=row.model, **_totals(row)) for row in by_model],
    )
