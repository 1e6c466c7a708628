"""What crosses workers for runs, through Redis: the event log (Redis Streams), cancel
signals (pub/sub), active-run counts and worker liveness.

- Event log: each run's events go to the stream ``agentstream:run:<id>``. One mirror task
  per worker appends whatever its runs published since its last round trip, for all runs in
  one pipeline and one entry per run (a JSON array of events, with the id ``<last seq>-0``,
  so ``XREAD`` after ``<n>-0`` returns every entry holding an event after seq n): the
  producer never waits for Redis, and pays neither a round trip nor a command per token.
  A finished run's stream expires ``AGENTSTREAM_RUN_EVENTS_TTL_S`` after its terminal event.
- Cancel: ``PUBLISH agentstream:cancel <run id>``; every worker listens and the one running it
  stops it.
- Active runs: a sorted set per user of slot tokens scored by their lease's expiry; live
  slots are renewed by their worker, so a killed worker's slots lapse by themselves.
- Liveness: ``agentstream:worker:<id>`` exists while its worker lives (renewed each
  ``lease/3``); runs of a worker whose key is gone are interrupted by another.

Every call goes through the ``RedisGuard``: when Redis is down, runs go on (the database has
every reply), limits fail open, and resuming from another worker says it is unavailable.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Any

from pydantic import TypeAdapter
from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError

from agentstream.chat import events as ev
from agentstream.kit.errors import TooManyRuns
from agentstream.kit.redis import RedisGuard, RedisUnavailable
from agentstream.runs.limits import Slot
from agentstream.runs.registry import Run

log = logging.getLogger("agentstream.runs")

PREFIX = "agentstream:"
CANCEL_CHANNEL = PREFIX + "cancel"
# The shortest time between two mirror round trips (the most an event waits for one), and
# how much longer per run in the last one: a round trip costs ~18 µs of CPU per run in it
# (redis-py packing an XADD and reading its reply), so with hundreds of runs streaming a
# 10 ms rhythm would spend a third of the worker's CPU on the mirror; this keeps it at a few
# percent. The database checkpoints bound what a crash loses either way.
MIRROR_INTERVAL_S = 0.01
MIRROR_PER_RUN_S = 0.0005
MIRROR_MAX_INTERVAL_S = 0.25


def mirror_pause(runs: int) -> float:
    """The pause after a round trip that mirrored ``runs`` runs."""
    return min(max(MIRROR_INTERVAL_S, runs * MIRROR_PER_RUN_S), MIRROR_MAX_INTERVAL_S)


_EVENTS = TypeAdapter[list[ev.ChatEvent]](list[ev.ChatEvent])


def stream_key(run_id: uuid.UUID) -> str:
    """The Redis stream holding a run's events."""
    return f"{PREFIX}run:{run_id}"


def worker_key(worker_id: str) -> str:
    """Exists while that worker is alive."""
    return f"{PREFIX}worker:{worker_id}"


def dead_key(worker_id: str) -> str:
    """Set (to the reaper's id) once a reaper has taken that worker for dead."""
    return f"{PREFIX}dead:{worker_id}"


def entry(events: Sequence[ev.ChatEvent]) -> tuple[str, dict[str, bytes]]:
    """``(id, fields)`` of one stream entry holding consecutive ``events``: its id is the last
    one's seq, so ``XREAD`` after ``<n>-0`` returns every entry holding an event after seq n."""
    return f"{events[-1].seq}-0", {"e": b"[" + b",".join(e.dump_json() for e in events) + b"]"}


def _already_there(error: Exception) -> bool:
    """An ``XADD`` refused because its entry is already in the log (a retried batch)."""
    return isinstance(error, ResponseError) and "equal or smaller" in str(error)


def decode_entries(entries: list[Any], after: int = 0) -> list[ev.ChatEvent]:
    """The events of ``XRANGE`` / ``XREAD`` entries with ``seq > after``, each once (an entry
    may repeat events of the one before it, when a batch was retried with more events)."""
    events: list[ev.ChatEvent] = []
    for _, fields in entries:
        for event in _EVENTS.validate_json(fields[b"e"]):
            if event.seq is not None and event.seq > after:
                events.append(event)
                after = event.seq
    return events


class RedisRunLog:
    """Mirrors this worker's runs into Redis Streams, batched."""

    def __init__(self, guard: RedisGuard, *, ttl_s: float, retry_s: float) -> None:
        self._guard = guard
        self._ttl_ms = int(ttl_s * 1000)
        self._retry_s = retry_s
        self._dirty: dict[uuid.UUID, Run] = {}
        self._mirrored: dict[uuid.UUID, int] = {}
        self._failing: set[uuid.UUID] = set()  # runs whose last mirror write failed (logged)
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start the mirror task."""
        self._task = asyncio.create_task(self._loop(), name="run-log-mirror")

    def published(self, run: Run) -> None:
        """A run published an event: mirror it with the next batch."""
        self._dirty[run.id] = run
        self._wake.set()

    async def _loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            batch, self._dirty = self._dirty, {}
            try:
                await self._guard.run(functools.partial(self._append, runs=batch))
            except RedisUnavailable:
                # Keep them for the next try; the database has every reply meanwhile.
                self._dirty = batch | self._dirty
                await asyncio.sleep(self._retry_s)
                self._wake.set()
                continue
            # An event after a quiet spell goes at once; a burst goes in batches this far
            # apart, so a fast model costs one round trip per interval, not one per token.
            await asyncio.sleep(mirror_pause(len(batch)))

    async def _append(self, redis: Redis, *, runs: dict[uuid.UUID, Run]) -> None:
        pipe = redis.pipeline(transaction=False)
        upto: dict[uuid.UUID, int] = {}
        commands: dict[uuid.UUID, int] = {}  # how many commands each run queued
        for run_id, run in runs.items():
            done = self._mirrored.get(run_id, 0)
            events = run.events_after(done)
            key = stream_key(run_id)
            queued = 0
            if events:
                entry_id, fields = entry(events)
                pipe.xadd(key, fields, id=entry_id)  # type: ignore[arg-type]
                queued += 1
            # Every write sets the key's expiry, so no log is ever left without one (a live
            # run's is pushed back with each batch; a finished run's counts from its end).
            pipe.pexpire(key, self._ttl_ms)
            commands[run_id] = queued + 1
            upto[run_id] = done + len(events)
        # Each command's failure comes back as its result: checked per run below.
        results = iter(await pipe.execute(raise_on_error=False))
        for run_id, seq in upto.items():
            replies = [next(results) for _ in range(commands[run_id])]
            failed = [r for r in replies if isinstance(r, Exception) and not _already_there(r)]
            if failed:
                # Not mirrored: kept for the next round (retried, never dropped silently).
                if run_id not in self._failing:
                    self._failing.add(run_id)
                    log.warning(
                        "could not mirror a run's events to Redis; retrying",
                        extra={"message_id": str(run_id), "error": str(failed[0])},
                    )
                self._dirty.setdefault(run_id, runs[run_id])
                self._wake.set()
                continue
            self._failing.discard(run_id)
            if runs[run_id].finished and seq == runs[run_id].last_seq:
                self._mirrored.pop(run_id, None)
            else:
                self._mirrored[run_id] = seq

    async def aclose(self) -> None:
        """Flush what is pending (best effort) and stop."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._dirty:
            with contextlib.suppress(RedisUnavailable):
                await self._guard.run(functools.partial(self._append, runs=self._dirty))


def _entry_seq(entry_id: bytes | str) -> int:
    """The seq an entry id names (``<seq>-0``)."""
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    return int(text.split("-", 1)[0])


async def follow(
    blocking: Redis, run_id: uuid.UUID, after: int, idle_s: float | None
) -> AsyncIterator[list[ev.ChatEvent]]:
    """A run's events from the Redis log (any worker's), after ``after``, until its terminal
    event; an empty batch after ``idle_s`` of silence.

    A cursor at or past the terminal event gets the terminal event alone, again; a cursor past
    the log's end of a run still going waits for the log (read from its end, not from the
    cursor, so the terminal event is seen whatever its seq)."""
    key = stream_key(run_id)
    block = int((idle_s or 15) * 1000)
    lost = "Lost the connection to Redis; resume this run again shortly."
    try:
        newest: Any = await blocking.xrevrange(key, count=1)
    except (RedisError, OSError):
        yield [ev.Error(content=lost, error_code="unavailable", message_id=run_id)]
        return
    # Entries are numbered by their last event's seq: reading after min(cursor, end of log)
    # returns every entry that holds an event after the cursor, and any written later.
    end = _entry_seq(newest[0][0]) if newest else 0
    last = f"{min(after, end)}-0"
    if newest and after >= end:
        # Already at or past the log's end: if that end is the terminal event, it is all.
        tail = decode_entries(newest)
        if tail and tail[-1].type in ev.TERMINAL_TYPES:
            yield tail[-1:]
            return
    while True:
        try:
            reply: Any = await blocking.xread({key: last}, count=1000, block=block)
        except (RedisError, OSError):
            # Not the run's end (it goes on, and is stored): this reader lost the log. It ends
            # with an error the client can act on — resume again later — and no seq.
            yield [ev.Error(content=lost, error_code="unavailable", message_id=run_id)]
            return
        if not reply:
            yield []
            continue
        entries = reply[0][1]
        last = entries[-1][0].decode()
        every = decode_entries(entries)
        events = [e for e in every if (e.seq or 0) > after]
        if events:
            after = events[-1].seq or after
            yield events
            if events[-1].type in ev.TERMINAL_TYPES:
                return
        elif every and every[-1].type in ev.TERMINAL_TYPES:
            # The run ended at or before the cursor (e.g. a reaper numbered its terminal
            # event from a log that lagged what this reader had seen): send it again.
            yield every[-1:]
            return


async def stream_state(guard: RedisGuard, run_id: uuid.UUID) -> tuple[int, list[ev.ChatEvent]]:
    """``(last seq, every event)`` of a run's log (``(0, [])`` when it has none)."""
    entries: Any = await guard.run(lambda redis: redis.xrange(stream_key(run_id)))
    events = decode_entries(entries)
    return (events[-1].seq or 0 if events else 0), events


# KEYS[1] = the user's slots; ARGV = now, lease, limit, token. 1 when the slot is taken.
_ACQUIRE = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if tonumber(ARGV[3]) > 0 and redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then
  return 0
end
redis.call('ZADD', KEYS[1], ARGV[1] + ARGV[2], ARGV[4])
redis.call('PEXPIRE', KEYS[1], math.ceil(ARGV[2] * 1000))
return 1
"""


class _RedisSlot:
    def __init__(self, owner: RedisActiveRuns, key: str, token: str) -> None:
        self._owner, self.key, self.token = owner, key, token

    async def release(self) -> None:
        await self._owner.release(self)


class RedisActiveRuns:
    """Per-user run slots shared by every worker; each worker renews its own."""

    def __init__(self, guard: RedisGuard, *, lease_s: float) -> None:
        self._guard = guard
        self._lease_s = lease_s
        self._script = guard.client.register_script(_ACQUIRE)
        self._held: dict[str, _RedisSlot] = {}

    async def acquire(self, user_id: uuid.UUID, limit: int) -> Slot:
        """Take a slot (fails open when Redis is unavailable)."""
        slot = _RedisSlot(self, f"{PREFIX}active:{user_id}", uuid.uuid4().hex)
        args: list[float | str] = [time.time(), self._lease_s, limit, slot.token]
        try:
            taken = await self._guard.run(lambda _: self._script(keys=[slot.key], args=args))
        except RedisUnavailable:
            taken = 1
        if not int(taken):
            raise TooManyRuns(f"At most {limit} replies can stream at once; wait for one to end.")
        self._held[slot.token] = slot
        return slot

    async def release(self, slot: _RedisSlot) -> None:
        """Give a slot back (idempotent; a lapsed one is gone anyway)."""
        if self._held.pop(slot.token, None) is not None:
            with contextlib.suppress(RedisUnavailable):
                await self._guard.run(lambda redis: redis.zrem(slot.key, slot.token))

    async def renew(self, redis: Redis) -> None:
        """Extend the lease of every slot this worker holds."""
        if self._held:
            pipe = redis.pipeline(transaction=False)
            expiry = time.time() + self._lease_s
            slots = list(self._held.values())
            for slot in slots:
                # Not ``XX``: a slot that lapsed while this worker was too busy to renew is put
                # back (its run still counts); one released meanwhile lapses after a lease.
                pipe.zadd(slot.key, {slot.token: expiry})
            # The set itself must outlive every lease in it: each renewal extends it too (the
            # newest write, whichever worker's, sets the furthest expiry).
            for key in {slot.key for slot in slots}:
                pipe.pexpire(key, math.ceil(self._lease_s * 1000))
            await pipe.execute()
