"""Busy conversations: what a new message does while its conversation is still answering.

The request's ``multitask`` (else its agent's ``settings.multitask``, else ``"reject"``):

- ``reject``: 409 ``conversation_busy`` naming the run in the way; nothing is stored;
- ``interrupt``: the runs in the way are cancelled (stored ``cancelled``), then this turn starts;
- ``enqueue``: this turn waits for them to end (its stream opens with ``queued``), then starts.

A turn that waits is stored at once (user message, placeholder, run ``queued``), so it is
never lost and can be followed, cancelled and resumed like any run, and it holds one of its
user's active-run slots. It starts when it can claim ``running`` (conversations/busy.py):
woken by the end of the run ahead of it (this worker's task, or another worker's Redis log),
and in any case looking again every ``AGENTSTREAM_RUN_LEASE_S / 3``, so a missed signal
costs a delay, never a stuck turn.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from agentstream.approvals.service import stale_before, supersede
from agentstream.chat.schemas import Multitask
from agentstream.conversations.busy import Busy, Claim, busy_with, claim_turn
from agentstream.conversations.turns import RunIdentity
from agentstream.db import transaction
from agentstream.kit.errors import ConversationBusy, Unavailable
from agentstream.models import Message, MessageStatus, RunStatus
from agentstream.runs.registry import RunControl
from agentstream.state import AppState
from agentstream.tenancy import Caller

log = logging.getLogger("agentstream.chat")

# While the run ahead has ended but is still stored as in the way (its final write waits for
# the database), look again after this long, doubling up to the recheck interval.
_FIRST_PAUSE_S = 0.05


@dataclass(frozen=True)
class Waiting:
    """A turn stored ``queued``: what is ahead of it, and whether it stops those runs."""

    ahead: Busy
    interrupt: bool


class TurnGate:
    """Admits a new turn inside the prepare transaction (``start_turn``'s ``admit``)."""

    def __init__(self, caller: Caller, multitask: Multitask, approval_ttl_s: float) -> None:
        self._caller = caller
        self._multitask = multitask
        self._approval_ttl_s = approval_ttl_s
        self.waiting: Waiting | None = None

    async def admit(self, session: AsyncSession, conversation_id: uuid.UUID) -> RunStatus:
        """``running`` when the conversation is free; else refuse, or queue the turn."""
        since = stale_before(self._approval_ttl_s)
        busy = await busy_with(session, self._caller, conversation_id, approvals_since=since)
        self.waiting = None
        if busy is None:
            return RunStatus.running
        if not busy.runs and self._multitask == "interrupt":
            # A paused turn's pending approvals: denied as superseded, and this turn starts.
            await supersede(session, self._caller, conversation_id)
            return RunStatus.running
        # Only runs can be waited for: pending approvals wait for a human, so ``enqueue``
        # refuses them as ``reject`` does.
        if self._multitask == "reject" or not busy.runs:
            raise ConversationBusy(details=busy.details())
        self.waiting = Waiting(busy, interrupt=self._multitask == "interrupt")
        return RunStatus.queued


def multitask_of(requested: Multitask | None, agent_default: object) -> Multitask:
    """The strategy a request follows: its own, else its agent's, else ``"reject"``."""
    if requested is not None:
        return requested
    if agent_default in ("interrupt", "enqueue"):
        return agent_default
    return "reject"


async def take_turn(
    state: AppState, identity: RunIdentity, waiting: Waiting, control: RunControl
) -> Sequence[Message] | MessageStatus:
    """Wait until a queued run may start, and start it: returns the conversation before this
    turn, or the status to store when the run was cancelled (or the server stopped) first."""
    if waiting.interrupt:
        await _stop(state, waiting.ahead.runs)
    recheck_s = state.settings.run_lease_s / 3
    pause, ended = _FIRST_PAUSE_S, None
    while not control.cancel_requested:
        claim = await _claim(state, identity)
        if claim.started:
            return claim.previous
        if claim.busy is None:
            return MessageStatus.interrupted  # ended by someone else (a reaper) meanwhile
        blocker = claim.busy.last
        assert blocker is not None  # a queued turn is only ever behind runs
        # The wait is interruptible, the database work around it is not: a cancel that came
        # during the claim was only noted, so look before waiting.
        if control.cancel_requested:
            break
        control.in_model = True
        try:
            if blocker == ended:
                # It ended, yet is still stored as in the way: its final write waits for the
                # database. Look again, less and less often.
                await asyncio.sleep(pause)
                pause = min(pause * 2, recheck_s)
            else:
                pause = _FIRST_PAUSE_S
            ended = blocker if await state.coordinator.wait_ended(blocker, recheck_s) else None
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                task.uncancel()
            break
        finally:
            control.in_model = False
    return control.cancel_status


async def _claim(state: AppState, identity: RunIdentity) -> Claim:
    """One look, and the start if nothing is ahead. A claim that loses to another worker's
    turn (the unique index) looks again: that turn is committed, so it is seen now."""
    while True:
        try:
            async with transaction(state.sessions) as session:
                return await claim_turn(
                    session,
                    identity,
                    identity.run_id,
                    identity.conversation_id,
                    identity.user_message_id,
                )
        except IntegrityError:
            continue


async def _stop(state: AppState, runs: Sequence[uuid.UUID]) -> None:
    """Cancel the runs ahead (``interrupt``), wherever they run. If a worker cannot be told
    (Redis is down) its run is left to end by itself, and this turn waits for it."""
    for run_id in runs:
        try:
            await state.coordinator.stop(run_id)
        except Unavailable:
            log.warning("could not interrupt a run ahead", extra={"message_id": str(run_id)})
