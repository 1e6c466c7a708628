"""Runs outlive connections: each executes as its own task, owned by the registry.

A transport subscribes to a run's events; if it goes away the run keeps going (or is
cancelled, when the request asked for ``on_disconnect: "cancel"``) and is persisted.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator

from agentstream.chat import events as ev
from agentstream.chat.flow import PreparedRun, RunControl, execute
from agentstream.models import MessageStatus
from agentstream.state import AppState

log = logging.getLogger("agentstream.runs")


class Run:
    """One chat run: a task producing events into a queue for at most one subscriber."""

    def __init__(self, state: AppState, prepared: PreparedRun) -> None:
        self.prepared = prepared
        self.control = RunControl()
        self._queue: asyncio.Queue[ev.ChatEvent | None] = asyncio.Queue()
        self._detached = False
        self.task = asyncio.create_task(self._drive(state), name=f"run-{prepared.message_id}")

    @property
    def id(self) -> uuid.UUID:
        """The run's id is its assistant message's id."""
        return self.prepared.message_id

    async def _drive(self, state: AppState) -> None:
        ended = False
        try:
            async for event in execute(state, self.prepared, self.control):
                ended = event.type in ev.TERMINAL_TYPES
                if not self._detached:
                    self._queue.put_nowait(event)
        except Exception:
            log.exception("run crashed", extra={"message_id": str(self.id)})
        finally:
            if not ended:
                # Even a crash ends with exactly one terminal event.
                self._queue.put_nowait(
                    ev.Error(
                        content="The run ended unexpectedly.",
                        error_code="internal_error",
                        conversation_id=self.prepared.conversation_id,
                        message_id=self.id,
                    )
                )
            self._queue.put_nowait(None)

    async def next_event(self) -> ev.ChatEvent | None:
        """The next event, or ``None`` after the terminal one (safe to cancel while waiting)."""
        return await self._queue.get()

    def ready_events(self) -> list[ev.ChatEvent | None]:
        """Events already produced (possibly ending with ``None``), without waiting."""
        ready: list[ev.ChatEvent | None] = []
        while not self._queue.empty():
            ready.append(self._queue.get_nowait())
        return ready

    async def events(self) -> AsyncIterator[ev.ChatEvent]:
        """The run's events, ending after the terminal one."""
        while (event := await self._queue.get()) is not None:
            yield event

    def cancel(self, status: MessageStatus = MessageStatus.cancelled) -> None:
        """Stop the model; the partial reply is stored with ``status``."""
        self.control.cancel_status = status
        self.control.cancel_requested = True
        if self.control.in_model:
            self.task.cancel()

    def detach(self) -> None:
        """The subscriber left: keep running (or cancel, if the request asked for it)."""
        self._detached = True
        if self.prepared.on_disconnect == "cancel":
            self.cancel()


class RunRegistry:
    """Holds every in-flight run so none is garbage-collected or forgotten at shutdown."""

    def __init__(self) -> None:
        self._runs: dict[uuid.UUID, Run] = {}

    def start(self, state: AppState, prepared: PreparedRun) -> Run:
        """Start a run as its own task."""
        run = Run(state, prepared)
        self._runs[run.id] = run
        run.task.add_done_callback(lambda _: self._runs.pop(run.id, None))
        return run

    def active(self) -> list[Run]:
        """The runs still in flight."""
        return list(self._runs.values())

    async def shutdown(self, grace_s: float) -> None:
        """Cancel in-flight runs (stored as ``interrupted``) and wait for them to persist."""
        runs = list(self._runs.values())
        for run in runs:
            run.cancel(MessageStatus.interrupted)
        if runs:
            await asyncio.wait([r.task for r in runs], timeout=grace_s)
