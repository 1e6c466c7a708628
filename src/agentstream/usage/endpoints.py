"""``/v1/usage``: the team's token usage over a date range."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query

from agentstream.auth.deps import ViewerPrincipal
from agentstream.kit.errors import ValidationFailed
from agentstream.models import utcnow
from agentstream.state import SessionDep
from agentstream.usage import service
from agentstream.usage.schemas import UsageReport

router = APIRouter(prefix="/v1/usage", tags=["usage"])


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@router.get("", response_model=UsageReport)
async def usage(
    principal: ViewerPrincipal,
    session: SessionDep,
    start: Annotated[datetime | None, Query(alias="from")] = None,
    end: Annotated[datetime | None, Query(alias="to")] = None,
) -> UsageReport:
    """Totals by agent, model, day and user, ``?from=&to=`` (ISO dates; default the last 30
    days)."""
    end_at = _aware(end) if end else utcnow()
    start_at = _aware(start) if start else end_at - timedelta(days=30)
    if start_at >= end_at:
        raise ValidationFailed("'from' must be before 'to'.")
    return await service.report(session, principal, start_at, end_at)
