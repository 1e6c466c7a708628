"""Writing replies so none is lost: checkpoints while they stream, final states that wait out
a database outage.

One ``TurnWriter`` per worker. Every ``checkpoint_s`` it stores the text of every reply that
changed since the last checkpoint in one transaction (never a write per token), so a crash
loses at most that interval. A final write that finds the database unreachable is kept and
retried with backoff until the database is back; at shutdown what is still pending is spilled
to a file in the data directory and written by the next start.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
import uuid
from pathlib import Path
from typing import Any, Protocol

from agentstream.conversations.turns import (
    Draft,
    RunIdentity,
    TurnOutcome,
    finish_turn,
    save_drafts,
)
from agentstream.db import SessionMaker, is_unreachable, transaction
from agentstream.kit import jsonenc
from agentstream.models import MessageStatus

log = logging.getLogger("agentstream.writer")

_RETRY_FIRST_S = 0.25
_RETRY_MAX_S = 10.0


class Drafting(Protocol):
    """A reply being written; ``version`` moves whenever its text or tool calls change."""

    @property
    def version(self) -> int: ...

    def draft(self, run_id: uuid.UUID) -> Draft:
        """The reply so far."""
        ...


def _encode(run: RunIdentity, outcome: TurnOutcome) -> bytes:
    return jsonenc.dumps({"run": dataclasses.asdict(run), "outcome": dataclasses.asdict(outcome)})


def _decode(line: bytes) -> tuple[RunIdentity, TurnOutcome]:
    data: dict[str, Any] = jsonenc.loads(line)
    run = data["run"]
    for key in ("run_id", "team_id", "user_id", "agent_id", "conversation_id", "user_message_id"):
        run[key] = uuid.UUID(run[key])
    outcome = data["outcome"] | {"status": MessageStatus(data["outcome"]["status"])}
    return RunIdentity(**run), TurnOutcome(**outcome)


class TurnWriter:
    """Checkpoints streaming replies and guarantees their final write."""

    def __init__(
        self, sessions: SessionMaker, *, checkpoint_s: float, timeout_s: float, spill: Path
    ) -> None:
        self._sessions = sessions
        self._interval = checkpoint_s
        self._timeout = timeout_s
        self._spill = spill
        self._drafts: dict[uuid.UUID, tuple[Drafting, int]] = {}
        self._pending: dict[uuid.UUID, tuple[RunIdentity, TurnOutcome]] = {}
        self._retry_at = 0.0
        self._backoff = _RETRY_FIRST_S
        # Held while a checkpoint is written, so a reply's final write never races (and is
        # never overwritten by) an older checkpoint of the same reply.
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Write what an earlier process left pending, then start checkpointing."""
        if self._spill.exists():
            lines = self._spill.read_bytes().splitlines()
            self._spill.unlink()
            for line in lines:
                run, outcome = _decode(line)
                self._pending[run.run_id] = (run, outcome)
            log.info("retrying %d reply writes left by the previous process", len(lines))
            await self._retry_pending()
        self._task = asyncio.create_task(self._loop(), name="turn-writer")

    def track(self, run_id: uuid.UUID, drafting: Drafting) -> None:
        """Checkpoint this reply while it streams."""
        self._drafts[run_id] = (drafting, drafting.version)

    @property
    def pending(self) -> int:
        """Final writes waiting for the database."""
        return len(self._pending)

    async def finish(self, run: RunIdentity, outcome: TurnOutcome) -> bool:
        """Store the reply's final state. If the database is unreachable, keep it and retry
        in the background; returns whether it is stored already."""
        async with self._lock:
            self._drafts.pop(run.run_id, None)
        try:
            await self._write_final(run, outcome)
            return True
        except Exception as exc:
            if not is_unreachable(exc):
                raise
            log.warning(
                "database unreachable; the reply is kept and its write retried",
                extra={"message_id": str(run.run_id), "error": type(exc).__name__},
            )
            self._pending[run.run_id] = (run, outcome)
            self._retry_at = time.monotonic()
            return False

    async def _write_final(self, run: RunIdentity, outcome: TurnOutcome) -> None:
        async with asyncio.timeout(self._timeout), transaction(self._sessions) as session:
            await finish_turn(session, run, outcome)

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            await self.checkpoint()
            if self._pending and time.monotonic() >= self._retry_at:
                await self._retry_pending()

    async def checkpoint(self) -> None:
        """Store the text of every reply that changed since its last checkpoint."""
        async with self._lock:
            changed = [
                (run_id, drafting)
                for run_id, (drafting, saved) in self._drafts.items()
                if drafting.version != saved
            ]
            if not changed:
                return
            versions = {run_id: drafting.version for run_id, drafting in changed}
            drafts = [drafting.draft(run_id) for run_id, drafting in changed]
            try:
                async with asyncio.timeout(self._timeout), transaction(self._sessions) as session:
                    await save_drafts(session, drafts)
            except Exception as exc:
                if not is_unreachable(exc):
                    raise
                log.warning("checkpoint skipped: database unreachable (%s)", type(exc).__name__)
                return
            for run_id, version in versions.items():
                if run_id in self._drafts:
                    self._drafts[run_id] = (self._drafts[run_id][0], version)

    async def _retry_pending(self) -> None:
        for run_id, (run, outcome) in list(self._pending.items()):
            try:
                await self._write_final(run, outcome)
            except Exception as exc:
                if not is_unreachable(exc):
                    log.exception("dropping a reply write that cannot succeed")
                    self._pending.pop(run_id)
                    continue
                self._retry_at = time.monotonic() + self._backoff
                self._backoff = min(self._backoff * 2, _RETRY_MAX_S)
                return
            self._pending.pop(run_id)
            log.info(
                "stored a reply after the database came back", extra={"message_id": str(run_id)}
            )
        self._backoff = _RETRY_FIRST_S

    async def aclose(self) -> None:
        """Stop checkpointing; what the database still refuses is spilled for the next start."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._pending:
            await self._retry_pending()
        if self._pending:
            self._spill.parent.mkdir(parents=True, exist_ok=True)
            with self._spill.open("ab") as out:
                for run, outcome in self._pending.values():
                    out.write(_encode(run, outcome) + b"\n")
            log.warning(
                "database unreachable at shutdown: %d reply writes spilled to %s",
                len(self._pending),
                self._spill,
            )
