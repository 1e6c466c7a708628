"""Writing replies so none is lost: checkpoints while they stream, final states that wait out
a database outage.

One ``TurnWriter`` per worker. Every ``checkpoint_s`` it stores what changed in every
streaming reply since its last checkpoint, in one transaction (never a write per token): the
new text is appended, tool calls are written only when they changed, so a checkpoint costs
what changed rather than every reply's whole text. A crash loses at most that interval.

A final write that finds the database unreachable is journaled to disk at once
(``conversations/journal.py``) and retried with backoff until the database is back; the next
start of any worker replays what a dead process left in its journal.

No single failure stops the loop: a reply whose checkpoint cannot be stored (a bad value, any
per-run error) is found by writing the failed batch again one reply at a time, logged once,
and no longer checkpointed (its final write is still made); the others go on.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
import uuid
from collections.abc import Sequence
from typing import Any, Protocol

from agentstream.conversations.journal import Journal
from agentstream.conversations.turns import (
    Checkpoint,
    RunIdentity,
    TurnOutcome,
    finish_turn,
    save_checkpoints,
)
from agentstream.db import SessionMaker, is_unreachable, off_the_loop, transaction
from agentstream.kit import jsonenc
from agentstream.kit.text import storable, storable_json
from agentstream.models import MessageStatus

log = logging.getLogger("agentstream.writer")

_RETRY_FIRST_S = 0.25
_RETRY_MAX_S = 10.0


class Drafting(Protocol):
    """A reply being written: its text in pieces (only ever appended to) and its tool calls,
    whose ``tools_version`` moves whenever they change."""

    @property
    def text(self) -> list[str]: ...

    @property
    def tools_version(self) -> int: ...

    def tool_call_list(self) -> list[dict[str, Any]]:
        """The tool calls so far."""
        ...


@dataclasses.dataclass(slots=True)
class _Tracked:
    """A streaming reply and what its last checkpoint stored."""

    reply: Drafting
    pieces: int = 0  # text pieces stored (the placeholder starts empty)
    tools: int = 0  # the tools_version stored
    unsure: bool = False  # a checkpoint failed as it committed, maybe: rewrite the whole text


_IDS = ("run_id", "team_id", "user_id", "agent_id", "conversation_id", "user_message_id")


def encode(run: RunIdentity, outcome: TurnOutcome) -> bytes:
    """A pending final write as one journal payload."""
    # Ids read from PostgreSQL are asyncpg's own UUID type, which the encoder does not know.
    identity = dataclasses.asdict(run) | {key: str(getattr(run, key)) for key in _IDS}
    return jsonenc.dumps({"run": identity, "outcome": dataclasses.asdict(outcome)})


def decode(payload: bytes) -> tuple[RunIdentity, TurnOutcome]:
    """A journal payload back; text is made storable (a line of an earlier version may not be)."""
    data: dict[str, Any] = jsonenc.loads(payload)
    run = data["run"] | {key: uuid.UUID(data["run"][key]) for key in _IDS}
    outcome = data["outcome"] | {
        "status": MessageStatus(data["outcome"]["status"]),
        "content": storable(data["outcome"]["content"]),
        "tool_calls": storable_json(data["outcome"]["tool_calls"]),
    }
    return RunIdentity(**run), TurnOutcome(**outcome)


class TurnWriter:
    """Checkpoints streaming replies and guarantees their final write."""

    def __init__(
        self, sessions: SessionMaker, *, checkpoint_s: float, timeout_s: float, journal: Journal
    ) -> None:
        self._sessions = sessions
        self._interval = checkpoint_s
        self._timeout = timeout_s
        self._journal = journal
        self._drafts: dict[uuid.UUID, _Tracked] = {}
        self._pending: dict[uuid.UUID, tuple[RunIdentity, TurnOutcome]] = {}
        self._retry_at = 0.0
        self._backoff = _RETRY_FIRST_S
        # Held while a checkpoint is written, so a reply's final write never races (and is
        # never overwritten or appended to by) a checkpoint of the same reply.
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Write what dead processes left in their journals, then start checkpointing."""
        orphans = self._journal.take_orphans()
        for orphan in orphans:
            for payload in orphan.payloads:
                try:
                    run, outcome = decode(payload)
                except Exception:
                    log.exception("skipped an unreadable line of the reply journal %s", orphan.path)
                    continue
                self._pending[run.run_id] = (run, outcome)
        if self._pending:
            log.info("retrying %d reply writes left by earlier processes", len(self._pending))
            await self._retry_pending()
            # What the database still refuses is this process's to keep from now on.
            await self._journal.append(
                [(run_id, encode(*entry)) for run_id, entry in self._pending.items()]
            )
        for orphan in orphans:
            orphan.release()
        self._task = asyncio.create_task(self._loop(), name="turn-writer")

    def track(self, run_id: uuid.UUID, drafting: Drafting) -> None:
        """Checkpoint this reply while it streams."""
        self._drafts[run_id] = _Tracked(drafting)

    @property
    def pending(self) -> int:
        """Final writes waiting for the database."""
        return len(self._pending)

    async def finish(self, run: RunIdentity, outcome: TurnOutcome) -> bool:
        """Store the reply's final state. If the database is unreachable, journal it and retry
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
                "database unreachable; the reply is journaled and its write retried",
                extra={"message_id": str(run.run_id), "error": type(exc).__name__},
            )
        self._pending[run.run_id] = (run, outcome)
        self._retry_at = time.monotonic()
        await self._journal.append([(run.run_id, encode(run, outcome))])
        return False

    async def _write_final(self, run: RunIdentity, outcome: TurnOutcome) -> None:
        async with asyncio.timeout(self._timeout), transaction(self._sessions) as session:
            await finish_turn(session, run, outcome)

    async def _loop(self) -> None:
        failing = False
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.checkpoint()
                if self._pending and time.monotonic() >= self._retry_at:
                    await self._retry_pending()
            except Exception:
                # Per-run failures are handled below; this is the last line of defence, and
                # the loop goes on whatever happened (logged once until a round succeeds).
                if not failing:
                    log.exception("a checkpoint round failed; checkpoints go on")
                failing = True
            else:
                failing = False

    async def checkpoint(self) -> None:
        """Store what changed in every streaming reply since its last checkpoint."""
        async with self._lock:
            changes = self._changes()
            if not changes:
                return
            try:
                await self._store([checkpoint for _, checkpoint, _, _ in changes])
            except Exception as exc:
                if is_unreachable(exc):
                    log.warning("checkpoint skipped: database unreachable (%s)", type(exc).__name__)
                    for tracked, *_ in changes:
                        tracked.unsure = True
                    return
                await self._store_each(changes)
                return
            for tracked, _, pieces, tools in changes:
                tracked.pieces, tracked.tools, tracked.unsure = pieces, tools, False

    def _changes(self) -> list[tuple[_Tracked, Checkpoint, int, int]]:
        """``(reply, its checkpoint, text pieces and tools_version it stores)`` of each reply
        that changed."""
        changes = []
        for run_id, tracked in self._drafts.items():
            reply = tracked.reply
            pieces, tools = len(reply.text), reply.tools_version
            if pieces == tracked.pieces and tools == tracked.tools and not tracked.unsure:
                continue
            first = 0 if tracked.unsure else tracked.pieces
            checkpoint = Checkpoint(
                run_id,
                "".join(reply.text[first:pieces]),
                rewrite=tracked.unsure,
                tool_calls=reply.tool_call_list() if tools != tracked.tools else None,
            )
            changes.append((tracked, checkpoint, pieces, tools))
        return changes

    async def _store(self, checkpoints: Sequence[Checkpoint]) -> None:
        async with asyncio.timeout(self._timeout), transaction(self._sessions) as session:
            connection = await session.connection()
            # SQLite rewrites each reply's row (pages of it) whatever changed: tens of ms for
            # a thousand replies, which must not stall the streams on the loop.
            await off_the_loop(connection)
            await save_checkpoints(connection, checkpoints)

    async def _store_each(self, changes: list[tuple[_Tracked, Checkpoint, int, int]]) -> None:
        """After a batch failed on its data: each reply alone, so only a bad one is dropped."""
        for index, (tracked, checkpoint, pieces, tools) in enumerate(changes):
            try:
                await self._store([checkpoint])
            except Exception as exc:
                if is_unreachable(exc):
                    for rest, *_ in changes[index:]:
                        rest.unsure = True
                    return
                log.exception(
                    "this reply cannot be checkpointed; its final write will still be made",
                    extra={"message_id": str(checkpoint.run_id)},
                )
                self._drafts.pop(checkpoint.run_id, None)
                continue
            tracked.pieces, tracked.tools, tracked.unsure = pieces, tools, False

    async def _retry_pending(self) -> None:
        settled: list[uuid.UUID] = []
        try:
            for run_id, (run, outcome) in list(self._pending.items()):
                try:
                    await self._write_final(run, outcome)
                except Exception as exc:
                    if is_unreachable(exc):
                        self._retry_at = time.monotonic() + self._backoff
                        self._backoff = min(self._backoff * 2, _RETRY_MAX_S)
                        return
                    log.exception(
                        "dropping a reply write that cannot succeed",
                        extra={"message_id": str(run_id)},
                    )
                else:
                    log.info(
                        "stored a reply after the database came back",
                        extra={"message_id": str(run_id)},
                    )
                self._pending.pop(run_id, None)
                settled.append(run_id)
            self._backoff = _RETRY_FIRST_S
        finally:
            if settled:
                await self._journal.settle(settled)

    async def aclose(self) -> None:
        """Stop checkpointing; what the database still refuses stays journaled for the next
        start."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._pending:
            await self._retry_pending()
        if self._pending:
            log.warning(
                "database unreachable at shutdown: %d reply writes stay in %s for the next start",
                len(self._pending),
                self._journal.path,
            )
        self._journal.close()
