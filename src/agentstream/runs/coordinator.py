"""Runs across workers: where to read a run from, how to stop it, and what to do with the runs
of a worker that died.

With one worker and no Redis everything is local, and a run found ``running`` in the database
at start-up belongs to a process that is gone. With Redis, any worker serves status, cancel and
resume for any run: events come from the run's Redis stream, cancels are published, and each
worker keeps its liveness key fresh (``lease.Lease``, off the event loop) so the others can tell
when it died.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.exceptions import RedisError

from agentstream.chat import events as ev
from agentstream.conversations.recovery import interrupt_run, running_runs
from agentstream.conversations.turns import Draft
from agentstream.db import SessionMaker, is_unreachable, transaction
from agentstream.kit.errors import RunEventsExpired, Unavailable
from agentstream.kit.redis import RedisGuard, RedisUnavailable
from agentstream.runs import redis as shared
from agentstream.runs.lease import Lease, claim_dead
from agentstream.runs.reading import Batches, Readable, shaped
from agentstream.runs.redis import RedisActiveRuns
from agentstream.runs.registry import RunRegistry
from agentstream.runs.schemas import RunPublic

log = logging.getLogger("agentstream.runs")


@dataclass(frozen=True)
class RemoteRun:
    """A run of another worker, followed through its Redis stream."""

    id: uuid.UUID
    conversation_id: uuid.UUID
    blocking: Redis

    def subscribe(
        self, after: int = 0, *, types: frozenset[str] | None = None, idle_s: float | None = None
    ) -> Batches:
        """The run's events after ``after``, from the shared log."""
        batches = shared.follow(self.blocking, self.id, after, idle_s)
        return shaped(batches, run_id=self.id, conversation_id=self.conversation_id, types=types)

    def detach(self) -> None:
        """Only the starting connection's departure matters, and that is not this one."""


def _recovered(events: list[ev.ChatEvent], run_id: uuid.UUID) -> Draft:
    text = "".join(e.content for e in events if isinstance(e, ev.TextDelta))
    calls: dict[str, dict[str, object]] = {}
    for event in events:
        if isinstance(event, ev.ToolCall):
            calls[event.tool_call_id] = event.model_dump(
                include={"tool_name", "tool_args", "tool_call_id"}
            )
        elif isinstance(event, ev.ToolResult) and event.tool_call_id in calls:
            calls[event.tool_call_id]["tool_result_content"] = event.tool_result_content
    return Draft(run_id, text, list(calls.values()))


class Coordinator:
    """This worker's part in the runs of all workers."""

    def __init__(
        self,
        *,
        worker_id: str,
        registry: RunRegistry,
        sessions: SessionMaker,
        lease_s: float,
        ttl_s: float,
        guard: RedisGuard | None = None,
        blocking: Redis | None = None,
        active_runs: RedisActiveRuns | None = None,
        lease: Lease | None = None,
    ) -> None:
        self.worker_id = worker_id
        self._registry = registry
        self._sessions = sessions
        self._lease_s = lease_s
        self._ttl_ms = int(ttl_s * 1000)
        self._guard = guard
        self._blocking = blocking
        self._active_runs = active_runs
        self._lease = lease
        self._tasks: list[asyncio.Task[None]] = []
        self._unreapable: set[uuid.UUID] = set()  # runs whose interruption failed (logged)

    async def start(self) -> None:
        """Announce this worker, interrupt what dead workers left running, then keep watch."""
        if self._lease is not None:
            # Alive before anything else: until this key exists, other workers would take this
            # worker's runs for a dead one's. From then on a thread renews it, so a stalled
            # event loop never looks like a dead worker.
            await asyncio.to_thread(self._lease.beat)
            self._lease.start()
        await self.reap()
        if self._guard is not None:
            self._tasks += [
                asyncio.create_task(self._every(self._lease_s / 3, self._renew_slots)),
                asyncio.create_task(self._every(self._lease_s / 3, self.reap)),
                asyncio.create_task(self._listen_for_cancels()),
            ]

    async def aclose(self) -> None:
        """Stop watching; a clean exit lets the others know at once that we are gone."""
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            # Bounded: a Redis client blocked in a read must not hold up the shutdown.
            _, stuck = await asyncio.wait(self._tasks, timeout=2)
            if stuck:
                log.warning("%d run coordination tasks did not stop in time", len(stuck))
        if self._lease is not None:
            await asyncio.to_thread(self._lease.stop)

    # ------------------------------------------------------------------ status, cancel, read
    async def last_seq(self, run: RunPublic) -> int:
        """The run's latest ``seq``: counted here if it is ours, else read from its log."""
        local = self._registry.get(run.id)
        if local is not None:
            return local.last_seq
        if run.status.live and self._guard is not None:
            with contextlib.suppress(RedisUnavailable):
                return (await shared.stream_state(self._guard, run.id))[0]
        return run.last_seq

    async def cancel(self, run: RunPublic) -> None:
        """Stop the run wherever it runs (a no-op once it finished)."""
        if run.status.live:
            await self.stop(run.id)

    async def stop(self, run_id: uuid.UUID) -> None:
        """Cancel a run: here if it is ours, else tell the worker that runs it."""
        local = self._registry.get(run_id)
        if local is not None:
            if not local.finished:
                local.cancel()
        elif self._guard is not None:
            try:
                await self._guard.run(lambda r: r.publish(shared.CANCEL_CHANNEL, str(run_id)))
            except RedisUnavailable as exc:
                raise Unavailable("Cannot reach the worker running this reply; retry.") from exc

    async def readable(self, run: RunPublic) -> Readable:
        """Where to read the run's events: ours, its Redis log, or gone (410)."""
        local = self._registry.get(run.id)
        if local is not None:
            return local
        if self._guard is None or self._blocking is None:
            raise RunEventsExpired()
        try:
            exists = await self._guard.run(lambda r: r.exists(shared.stream_key(run.id)))
        except RedisUnavailable as exc:
            raise Unavailable("Resuming needs Redis, which is unavailable; retry.") from exc
        if not exists and not run.status.live:
            raise RunEventsExpired()
        return RemoteRun(run.id, run.conversation_id, self._blocking)

    async def wait_ended(self, run_id: uuid.UUID, timeout_s: float) -> bool:
        """Whether the run published its terminal event (wherever it runs) within ``timeout_s``;
        what is stored is the truth either way, and the caller looks there."""
        local = self._registry.get(run_id)
        if local is not None:
            # ``wait`` rather than ``await``: our being cancelled must not cancel that run.
            done, _ = await asyncio.wait([local.task], timeout=timeout_s)
            return bool(done)
        if self._blocking is None:
            await asyncio.sleep(timeout_s)  # not ours, and no shared log: look again later
            return False
        async for batch in shared.follow(self._blocking, run_id, 0, timeout_s):
            if not batch:
                return False
            if batch[-1].type in ev.TERMINAL_TYPES:
                return True
        return False

    # ------------------------------------------------------------------ background work
    async def _every(self, interval_s: float, work: Callable[[], Awaitable[None]]) -> None:
        while True:
            await asyncio.sleep(interval_s)
            try:
                await work()
            except Exception as exc:
                if not (is_unreachable(exc) or isinstance(exc, RedisUnavailable)):
                    log.exception("run coordination failed")

    async def _renew_slots(self) -> None:
        # On the loop: a slot that lapsed while the loop stalled is put back on renewal.
        if self._guard is not None and self._active_runs is not None:
            await self._guard.run(self._active_runs.renew)

    async def _dead(self, workers: set[str]) -> set[str]:
        """The workers that are gone, each claimed dead in one atomic step that fails if its
        liveness key exists (a heartbeat landing between our look and our reaping wins)."""
        if self._guard is None:
            return workers  # one worker, no Redis: any other owner is a previous process
        ordered = sorted(workers)
        claimed = await self._guard.run(
            lambda r: asyncio.gather(
                *(claim_dead(r, w, self.worker_id, self._ttl_ms) for w in ordered)
            )
        )
        return {w for w, dead in zip(ordered, claimed, strict=True) if dead}

    async def reap(self) -> None:
        """Interrupt the runs of workers that are gone (and tell their subscribers)."""
        async with transaction(self._sessions) as session:
            orphans = await running_runs(session, exclude_worker=self.worker_id)
        if not orphans:
            return
        try:
            dead = await self._dead({worker for _, worker in orphans})
        except RedisUnavailable:
            return  # cannot tell who is dead: interrupt nobody
        for run_id, worker in orphans:
            if worker in dead:
                await self._interrupt_isolated(run_id)

    async def _interrupt_isolated(self, run_id: uuid.UUID) -> None:
        """Interrupt one run; whatever is wrong with it never stops the others (or a start)."""
        try:
            await self._interrupt(run_id)
        except Exception as exc:
            if is_unreachable(exc):
                raise
            if run_id not in self._unreapable:
                self._unreapable.add(run_id)
                log.exception(
                    "could not interrupt a run whose worker is gone",
                    extra={"message_id": str(run_id)},
                )

    async def _interrupt(self, run_id: uuid.UUID) -> None:
        events: list[ev.ChatEvent] = []
        if self._guard is not None:
            with contextlib.suppress(RedisUnavailable):
                _, events = await shared.stream_state(self._guard, run_id)
        ended = bool(events) and events[-1].type in ev.TERMINAL_TYPES
        # The terminal event follows the newest event anyone knows of. The log may lag what a
        # client saw from the dead worker: readers whose cursor is at or past this seq are sent
        # the terminal event again (``follow``), so none waits for an event that never comes.
        terminal_seq = (events[-1].seq or 0) + (0 if ended else 1) if events else 1
        async with transaction(self._sessions) as session:
            # Without Redis no log holds any of its events (nor will hold the terminal one).
            stored_seq = terminal_seq if self._guard is not None else 0
            claimed = await interrupt_run(session, run_id, _recovered(events, run_id), stored_seq)
        if claimed is None or self._guard is None or ended:
            return
        log.warning("interrupted a run whose worker is gone", extra={"message_id": str(run_id)})
        terminal = ev.Error(
            seq=terminal_seq,
            content="The server running this reply stopped; the reply so far is stored.",
            error_code="interrupted",
            conversation_id=claimed,
            message_id=run_id,
        )
        key = shared.stream_key(run_id)

        async def append(redis: Redis) -> None:
            with contextlib.suppress(RedisError):  # another reaper got there first
                entry_id, fields = shared.entry([terminal])
                await redis.xadd(key, fields, id=entry_id)  # type: ignore[arg-type]
            await redis.pexpire(key, self._ttl_ms)

        with contextlib.suppress(RedisUnavailable):
            await self._guard.run(append)

    async def _listen_for_cancels(self) -> None:
        assert self._blocking is not None
        while True:
            try:
                async with self._blocking.pubsub() as pubsub:
                    await pubsub.subscribe(shared.CANCEL_CHANNEL)
                    async for message in pubsub.listen():
                        if message["type"] == "message":
                            self._cancel_local(message["data"])
            except (RedisError, OSError):
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    # The client turned our cancellation into its own error: stop anyway.
                    raise asyncio.CancelledError from None
                await asyncio.sleep(self._lease_s / 3)  # Redis is down: try again later

    def _cancel_local(self, data: bytes) -> None:
        with contextlib.suppress(ValueError):
            run = self._registry.get(uuid.UUID(data.decode()))
            if run is not None and not run.finished:
                run.cancel()
