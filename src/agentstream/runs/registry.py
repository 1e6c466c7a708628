"""Runs outlive connections: each executes as its own task, owned by the registry.

A run numbers its events (``seq``) and keeps them, so any number of subscribers can read it
from any point: the connection that started it, a reconnecting client, a second tab. If the
starting connection goes away the run keeps going (or is cancelled, when the request asked
for ``on_disconnect: "cancel"``) and its reply is stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Protocol

from agentstream.chat import events as ev
from agentstream.conversations.turns import RunIdentity
from agentstream.models import MessageStatus
from agentstream.observability import metrics
from agentstream.observability.tracing import RunSpan
from agentstream.runs.compact import CompactLog
from agentstream.runs.limits import ActiveRuns, Slot
from agentstream.runs.reading import Batches, shaped

log = logging.getLogger("agentstream.runs")


@dataclass
class RunControl:
    """Shared between a run and whoever may stop it.

    Only the model phase (and a queued turn's wait for its conversation) is interruptible,
    while ``in_model`` is set: a cancel that arrives before it starts is honoured when it
    would, and one that arrives while the result is being stored waits.
    """

    cancel_status: MessageStatus = MessageStatus.cancelled
    cancel_requested: bool = False
    in_model: bool = False
    slot: Slot | None = None

    async def reply_ended(self) -> None:
        """The reply is complete (only its final write may still wait for the database): the
        run no longer counts among its user's active runs."""
        if self.slot is not None:
            await self.slot.release()


Producer = Callable[[RunControl], AsyncIterator[ev.ChatEvent]]


class Mirror(Protocol):
    """Told of every event a run publishes (the Redis log mirrors them for other workers)."""

    def published(self, run: Run) -> None:
        """``run`` has a new event."""
        ...


class _Streams:
    """Counts open subscriptions, so shutdown can wait until every one got its last event."""

    def __init__(self) -> None:
        self.open = 0
        self._idle = asyncio.Event()
        self._idle.set()

    @contextlib.contextmanager
    def opened(self) -> Iterator[None]:
        self.open += 1
        self._idle.clear()
        try:
            yield
        finally:
            self.open -= 1
            if not self.open:
                self._idle.set()

    async def closed(self) -> None:
        await self._idle.wait()


# What the model produces: the first of these is the run's "time to first event".
_OUTPUT_TYPES = frozenset({"text_delta", "tool_call"})


def _final_status(terminal: ev.ChatEvent) -> metrics.RunStatus:
    if isinstance(terminal, ev.Done):
        done: dict[str, metrics.RunStatus] = {
            "cancelled": "cancelled",
            "interrupted": "interrupted",
        }
        return done.get(terminal.status.value, "complete")
    if isinstance(terminal, ev.Error) and terminal.error_code == "interrupted":
        return "interrupted"
    return "failed"


def _wake(waiter: asyncio.Future[bool], published: bool = True) -> None:
    if not waiter.done():  # a subscriber that went away cancelled its own
        waiter.set_result(published)


class Run:
    """One chat run: a task producing numbered events that subscribers read."""

    def __init__(
        self,
        identity: RunIdentity,
        produce: Producer,
        on_disconnect: str,
        streams: _Streams,
        slot: Slot,
        mirror: Mirror | None = None,
        span: RunSpan | None = None,
    ) -> None:
        self.identity = identity
        self._span = span
        self._streams = streams
        self._slot = slot
        self._mirror = mirror
        self.on_disconnect = on_disconnect
        self.control = RunControl(slot=slot)
        self._events: list[ev.ChatEvent] | CompactLog = []
        self._finished = False
        self._waiters: set[asyncio.Future[bool]] = set()  # one per subscriber waiting
        self._started = time.perf_counter()
        self._first_output = True
        metrics.run_started()
        self.task = asyncio.create_task(self._drive(produce), name=f"run-{identity.run_id}")

    @property
    def id(self) -> uuid.UUID:
        """The run's id is its assistant message's id."""
        return self.identity.run_id

    @property
    def finished(self) -> bool:
        """Whether the terminal event has been published."""
        return self._finished

    def _publish(self, event: ev.ChatEvent) -> None:
        assert isinstance(self._events, list), "a finished run publishes nothing"
        event.seq = len(self._events) + 1
        self._events.append(event)
        self._finished = event.type in ev.TERMINAL_TYPES
        if self._first_output and event.type in _OUTPUT_TYPES:
            self._first_output = False
            metrics.first_event(time.perf_counter() - self._started)
        if self._waiters:
            waiters, self._waiters = self._waiters, set()
            for waiter in waiters:
                _wake(waiter)
        if self._mirror is not None:
            self._mirror.published(self)

    async def _drive(self, produce: Producer) -> None:
        try:
            async for event in produce(self.control):
                self._publish(event)
        except Exception:
            log.exception("run crashed", extra={"message_id": str(self.id)})
        finally:
            if not self._finished:
                # Even a crash ends with exactly one terminal event.
                self._publish(
                    ev.Error(
                        content="The run ended unexpectedly.",
                        error_code="internal_error",
                        conversation_id=self.identity.conversation_id,
                        message_id=self.id,
                    )
                )
            terminal = self._events[-1:][0]
            metrics.run_finished(_final_status(terminal))
            if self._span is not None:
                self._span.end(terminal)
            await self._slot.release()

    @property
    def waiting(self) -> int:
        """Subscribers waiting for its next event now."""
        return len(self._waiters)

    @property
    def last_seq(self) -> int:
        """The ``seq`` of the latest event."""
        return len(self._events)

    def compact(self) -> int:
        """Keep the finished run's events compactly; returns the bytes they now take."""
        if isinstance(self._events, list):
            self._events = CompactLog(self._events)
        return self._events.nbytes

    @property
    def conversation_id(self) -> uuid.UUID:
        """The conversation the run's reply belongs to."""
        return self.identity.conversation_id

    def events_after(self, seq: int) -> list[ev.ChatEvent]:
        """The events published after ``seq``."""
        return list(self._events[seq:])

    async def _changed(self, seen: int, idle_s: float | None) -> bool:
        """Until an event is published after ``seen`` (or the run has finished): ``True``; or
        ``False`` after ``idle_s`` without one.

        Each waiting subscriber has a future of its own, which a publish sets: one giving up
        cancels only its own, and nobody needs a shield or a timeout context per event.
        """
        if len(self._events) > seen or self._finished:
            return True
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[bool] = loop.create_future()
        self._waiters.add(waiter)
        timer = None if idle_s is None else loop.call_later(idle_s, _wake, waiter, False)
        try:
            return await waiter or len(self._events) > seen or self._finished
        finally:
            if timer is not None:
                timer.cancel()
            self._waiters.discard(waiter)  # timed out or cancelled: no longer waiting

    def subscribe(
        self,
        after: int = 0,
        *,
        types: frozenset[str] | None = None,
        idle_s: float | None = None,
    ) -> Batches:
        """The run's events with ``seq > after``, in batches of what is ready, until the
        terminal one; ``types`` filters them; an empty batch means ``idle_s`` of silence. The
        first event names the run and its conversation."""
        return shaped(
            self._batches(after, idle_s),
            run_id=self.id,
            conversation_id=self.conversation_id,
            types=types,
        )

    async def _batches(self, after: int, idle_s: float | None) -> Batches:
        seen = max(0, after)
        with self._streams.opened():
            while True:
                if not await self._changed(seen, idle_s):
                    yield []
                    continue
                ready = self._events[seen:]
                if ready:
                    seen += len(ready)
                    yield ready
                elif self._finished:
                    # The cursor is at or past the terminal event: a reader of an ended run
                    # always ends with it, so it is sent again, alone.
                    yield self._events[-1:]
                    return
                if self._finished and seen >= len(self._events):
                    return

    def cancel(self, status: MessageStatus = MessageStatus.cancelled) -> None:
        """Stop the model; the partial reply is stored with ``status``."""
        self.control.cancel_status = status
        self.control.cancel_requested = True
        if self.control.in_model:
            self.task.cancel()

    def detach(self) -> None:
        """The starting connection left: keep running (or cancel, if the request asked to)."""
        if self.on_disconnect == "cancel" and not self._finished:
            self.cancel()


class RunRegistry:
    """Holds every run this worker executes: in flight (so none is garbage-collected or
    forgotten at shutdown), then finished for ``retain_s`` (so clients can still resume)."""

    def __init__(
        self,
        active_runs: ActiveRuns,
        *,
        max_per_user: int,
        retain_s: float,
        mirror: Mirror | None = None,
        max_bytes: int | None = None,
    ) -> None:
        self._mirror = mirror
        self._runs: dict[uuid.UUID, Run] = {}
        # Finished runs, oldest first: (run, when it finished, the bytes its events take).
        self._finished: OrderedDict[uuid.UUID, tuple[Run, float, int]] = OrderedDict()
        self._max_bytes = max_bytes
        self.kept_bytes = 0  # what finished runs' events take, in total
        self._active_runs = active_runs
        self._max_per_user = max_per_user
        self._retain_s = retain_s
        self._streams = _Streams()
        self.closing = False

    async def reserve(self, user_id: uuid.UUID) -> Slot:
        """A slot among the user's concurrent runs (``too_many_runs`` when they are all used)."""
        return await self._active_runs.acquire(user_id, self._max_per_user)

    def start(
        self,
        identity: RunIdentity,
        produce: Producer,
        on_disconnect: str,
        slot: Slot,
        span: RunSpan | None = None,
    ) -> Run:
        """Start a run as its own task; ``slot`` is released (and ``span`` ended) when it ends."""
        self._sweep()
        run = Run(identity, produce, on_disconnect, self._streams, slot, self._mirror, span)
        self._runs[run.id] = run
        run.task.add_done_callback(lambda _: self._retire(run))
        return run

    def _retire(self, run: Run) -> None:
        if self._runs.pop(run.id, None) is None:
            return  # retired already (by ``get``, before its done callback ran)
        size = run.compact()
        self._finished[run.id] = (run, time.monotonic(), size)
        self.kept_bytes += size
        # Over the cap, the oldest finished runs' events go first (never a live run's: those
        # are not in here); their resume is then 410, their stored message untouched.
        while self._max_bytes is not None and self.kept_bytes > self._max_bytes:
            self._drop_oldest()
        metrics.run_events_kept(self.kept_bytes)

    def _drop_oldest(self) -> None:
        _, (_, _, size) = self._finished.popitem(last=False)
        self.kept_bytes -= size

    def _sweep(self) -> None:
        expired = time.monotonic() - self._retain_s
        kept = self.kept_bytes
        while self._finished and next(iter(self._finished.values()))[1] < expired:
            self._drop_oldest()
        if self.kept_bytes != kept:
            metrics.run_events_kept(self.kept_bytes)

    def get(self, run_id: uuid.UUID) -> Run | None:
        """This worker's run, in flight or finished recently enough to replay."""
        run = self._runs.get(run_id)
        if run is not None and run.task.done():
            self._retire(run)  # a finished run counts from its end, not from its done callback
        self._sweep()
        run = self._runs.get(run_id)
        if run is None and run_id in self._finished:
            run = self._finished[run_id][0]
        return run

    def active(self) -> list[Run]:
        """The runs still in flight."""
        return list(self._runs.values())

    async def streams_closed(self) -> None:
        """Until no subscription is open."""
        await self._streams.closed()

    async def interrupt_all(self, grace_s: float) -> None:
        """Stop in-flight runs and wait (up to ``grace_s``) until their replies are stored
        ``interrupted`` and every open stream has sent its terminal event."""
        self.closing = True
        runs = list(self._runs.values())
        for run in runs:
            run.cancel(MessageStatus.interrupted)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(grace_s):
                if runs:
                    await asyncio.wait([r.task for r in runs])
                await self._streams.closed()
