"""``/v1/runs``: a run's status, cancel, and its events from any point (resume)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, status
from starlette.responses import StreamingResponse

from agentstream.auth.deps import CurrentPrincipal
from agentstream.chat.schemas import CursorText
from agentstream.runs import service
from agentstream.runs.schemas import RunPublic
from agentstream.state import SessionDep, StateDep
from agentstream.streaming.sse import SSE_RESPONSES, sse_response

router = APIRouter(prefix="/v1/runs", tags=["runs"])


async def owned_run(
    run_id: uuid.UUID, principal: CurrentPrincipal, session: SessionDep
) -> RunPublic:
    """The caller's run named by the path, or 404 ``run_not_found``."""
    return await service.get_owned(session, principal, run_id)


RunDep = Annotated[RunPublic, Depends(owned_run)]


@router.get("/{run_id}", response_model=RunPublic)
async def get_run(run: RunDep, state: StateDep) -> RunPublic:
    """A run: its status and the ``seq`` of its latest event."""
    return run.model_copy(update={"last_seq": await state.coordinator.last_seq(run)})


@router.post("/{run_id}/cancel", status_code=status.HTTP_202_ACCEPTED, response_model=RunPublic)
async def cancel_run(run: RunDep, state: StateDep) -> RunPublic:
    """Stop a run as a WebSocket ``cancel`` would, whichever worker runs it; idempotent.
    Returns the run as it is now (it may still read ``running`` for an instant)."""
    await state.coordinator.cancel(run)
    return run.model_copy(update={"last_seq": await state.coordinator.last_seq(run)})


@router.get("/{run_id}/events", response_class=StreamingResponse, responses=SSE_RESPONSES)
async def run_events(
    run: RunDep,
    state: StateDep,
    after: Annotated[CursorText | None, Query(description="Replay events after this seq.")] = None,
    last_event_id: Annotated[CursorText | None, Header()] = None,
) -> StreamingResponse:
    """The run's events after ``Last-Event-ID`` (or ``?after=``; default: all), then live
    until its terminal event."""
    readable = await state.coordinator.readable(run)
    cursor = last_event_id if last_event_id is not None else (after or 0)
    return sse_response(
        readable, after=cursor, keepalive_s=state.settings.sse_keepalive_s, owner=False
    )
