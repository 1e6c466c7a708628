"""``POST /v1/runs/{id}/approvals``: the owner's decisions on a paused run's tool calls."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, status

from agentstream.approvals.schemas import ApprovalsIn, ContinuationOut
from agentstream.auth.deps import CurrentPrincipal
from agentstream.chat.service import continue_run
from agentstream.state import StateDep

router = APIRouter(prefix="/v1/runs", tags=["runs"])


@router.post(
    "/{run_id}/approvals", status_code=status.HTTP_202_ACCEPTED, response_model=ContinuationOut
)
async def decide(
    run_id: uuid.UUID, body: ApprovalsIn, principal: CurrentPrincipal, state: StateDep
) -> ContinuationOut:
    """Decide every tool call the paused run waits on; returns the run that continues its
    turn (follow it with ``GET /v1/runs/{run_id}/events``)."""
    run = await continue_run(state, principal, run_id, body.decisions)
    return ContinuationOut(run_id=run.id)
