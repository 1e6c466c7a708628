"""Usage: one row per run (once, by run id; whole days rolled up by a trigger), and team
totals over a date range: whole days from the rollup, the partial days at its edges from the
rows."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Hashable
from datetime import UTC, date, datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from agentstream import tenancy
from agentstream.auth.service import Principal
from agentstream.models import Agent, MessageStatus, Role, UsageDaily, UsageLog, User
from agentstream.tenancy import Caller
from agentstream.usage.schemas import (
    AgentTotals,
    DayTotals,
    ModelTotals,
    Totals,
    UsageReport,
    UserTotals,
)


class Billed(Protocol):
    """What a usage row is recorded against: a run (its id is the assistant message's)."""

    @property
    def run_id(self) -> uuid.UUID: ...

    @property
    def team_id(self) -> uuid.UUID: ...

    @property
    def user_id(self) -> uuid.UUID: ...

    @property
    def agent_id(self) -> uuid.UUID: ...


# Once per run: a final write retried after its first commit's answer was lost must not
# bill the run again (``usage_logs.run_id`` is unique).
_INSERT_USAGE = {
    "postgresql": postgresql.insert(UsageLog).on_conflict_do_nothing(index_elements=["run_id"]),
    "sqlite": sqlite.insert(UsageLog).on_conflict_do_nothing(index_elements=["run_id"]),
}


async def record_usage(
    connection: AsyncConnection,
    run: Billed,
    *,
    conversation_id: uuid.UUID | None,
    model: str,
    input_tokens: int,
    output_tokens: int,
    duration_ms: int,
    status: MessageStatus,
) -> None:
    """Insert the usage row of one run, unless it has one (the caller's transaction commits
    it); ``conversation_id`` is ``None`` when the conversation was deleted meanwhile."""
    await connection.execute(
        _INSERT_USAGE[connection.dialect.name],
        {
            "run_id": run.run_id,
            "team_id": run.team_id,
            "user_id": run.user_id,
            "agent_id": run.agent_id,
            "conversation_id": conversation_id,
            "model": model,
            "input_tokens": input_tokens,
            "output_tokens": output_tokens,
            "duration_ms": duration_ms,
            "status": status,
        },
    )


# What a report adds up: (UTC day, agent id, user id, model) -> [runs, input, output].
_Key = tuple[date, uuid.UUID | None, uuid.UUID | None, str]
_Cells = dict[_Key, list[int]]
_DAY = timedelta(days=1)


def _day_start(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def _split(start: datetime, end: datetime) -> tuple[list[datetime], tuple[date, date] | None]:
    """The range as its whole UTC days (read from the rollup) and at most two partial days
    at its edges (read from the rows), each within one day: ``[a, b)`` pairs, flattened."""
    first = _day_start(start)
    first = first if first == start else first + _DAY
    last = _day_start(end)
    if first < last:
        edges = [(start, first), (last, end)]
        return [t for a, b in edges if a < b for t in (a, b)], (first.date(), last.date())
    if start < first < end:
        return [start, first, first, end], None
    return [start, end], None


def _add(cells: _Cells, key: _Key, runs: int, input_tokens: int, output_tokens: int) -> None:
    sums = cells.setdefault(key, [0, 0, 0])
    sums[0] += runs
    sums[1] += input_tokens or 0
    sums[2] += output_tokens or 0


async def _cells(session: AsyncSession, caller: Caller, start: datetime, end: datetime) -> _Cells:
    cells: _Cells = {}
    edges, whole = _split(start, end)
    if whole is not None:
        rollup = tenancy.usage_daily(caller).where(
            UsageDaily.day >= whole[0], UsageDaily.day < whole[1]
        )
        columns = (UsageDaily.day, UsageDaily.agent_id, UsageDaily.user_id, UsageDaily.model)
        sums = (UsageDaily.runs, UsageDaily.input_tokens, UsageDaily.output_tokens)
        for day_row in await session.execute(rollup.with_only_columns(*columns, *sums)):
            _add(cells, tuple(day_row[:4]), *day_row[4:])  # type: ignore[arg-type]
    group = (UsageLog.agent_id, UsageLog.user_id, UsageLog.model)
    sums_of_rows = (
        func.count(UsageLog.id),
        func.sum(UsageLog.input_tokens),
        func.sum(UsageLog.output_tokens),
    )
    for a, b in zip(edges[::2], edges[1::2], strict=True):
        rows = tenancy.usage_logs(caller).where(UsageLog.created_at >= a, UsageLog.created_at < b)
        day = a.astimezone(UTC).date()
        statement = rows.with_only_columns(*group, *sums_of_rows).group_by(*group)
        for row in await session.execute(statement):
            _add(cells, (day, row[0], row[1], row[2]), row[3], row[4], row[5])
    return cells


def _totals(sums: list[int]) -> dict[str, int]:
    runs, input_tokens, output_tokens = sums
    return {
        "runs": runs,
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "total_tokens": input_tokens + output_tokens,
    }


def _group(cells: _Cells, key: Callable[[_Key], Hashable]) -> dict[Any, list[int]]:
    groups: dict[Any, list[int]] = {}
    for cell, sums in cells.items():
        total = groups.setdefault(key(cell), [0, 0, 0])
        for index, value in enumerate(sums):
            total[index] += value
    return groups


async def report(
    session: AsyncSession, principal: Principal, start: datetime, end: datetime
) -> UsageReport:
    """Totals for the caller's team between ``start`` and ``end``: overall, by agent, model,
    day and agent, and user (every member's for admins, the caller's own otherwise)."""
    cells = await _cells(session, principal, start, end)
    agent_ids = {cell[1] for cell in cells if cell[1] is not None}
    named = tenancy.agents(principal).where(Agent.id.in_(agent_ids))
    slugs: dict[uuid.UUID | None, str | None] = {
        row.id: row.slug
        for row in await session.execute(named.with_only_columns(Agent.id, Agent.slug))
    }
    by_user = _group(cells, lambda c: c[2])
    if principal.role.rank < Role.admin.rank:  # others' usage is for admins to see
        by_user = {principal.user_id: by_user.get(principal.user_id, [0, 0, 0])}
    users = {
        row.id: row
        for row in await session.execute(
            select(User.id, User.email, User.display_name).where(
                User.id.in_([u for u in by_user if u is not None])
            )
        )
    }
    by_agent = _group(cells, lambda c: slugs.get(c[1]))
    by_day = _group(cells, lambda c: (c[0], slugs.get(c[1])))
    return UsageReport(
        start=start,
        end=end,
        total=Totals(**_totals(_group(cells, lambda c: None).get(None, [0, 0, 0]))),
        by_agent=[
            AgentTotals(agent=slug, **_totals(by_agent[slug]))
            for slug in sorted(by_agent, key=lambda s: (s is None, s or ""))
        ],
        by_model=[
            ModelTotals(model=model, **_totals(sums))
            for model, sums in sorted(_group(cells, lambda c: c[3]).items())
        ],
        by_day=[
            DayTotals(day=day, agent=slug, **_totals(by_day[day, slug]))
            for day, slug in sorted(by_day, key=lambda k: (k[0], k[1] is None, k[1] or ""))
        ],
        by_user=[
            UserTotals(
                user_id=user_id,
                email=users[user_id].email if user_id in users else None,
                display_name=users[user_id].display_name if user_id in users else None,
                **_totals(sums),
            )
            for user_id, sums in sorted(by_user.items(), key=lambda item: -sum(item[1][1:]))
        ],
    )
