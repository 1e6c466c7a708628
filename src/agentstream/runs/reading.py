"""A run as a transport reads it, wherever it runs: the ``Readable`` contract (this worker's
own run, or one followed through Redis) and ``shaped``, what one subscriber sees of its
batches."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Protocol

from agentstream.chat import events as ev

Batches = AsyncIterator[list[ev.ChatEvent]]


class Readable(Protocol):
    """A run as a transport reads it: this worker's own, or one followed through Redis."""

    @property
    def id(self) -> uuid.UUID: ...

    @property
    def conversation_id(self) -> uuid.UUID: ...

    def subscribe(
        self, after: int = 0, *, types: frozenset[str] | None = None, idle_s: float | None = None
    ) -> Batches:
        """Batches of the run's events after ``after`` until its terminal event."""
        ...

    def detach(self) -> None:
        """The connection that started the run went away."""
        ...


async def shaped(
    batches: Batches,
    *,
    run_id: uuid.UUID,
    conversation_id: uuid.UUID,
    types: frozenset[str] | None,
) -> Batches:
    """What one subscriber sees of a run's batches: only ``types`` (when given), and its
    first event stamped with the run and conversation ids (after ``queued``, whose ``run_id``
    names the run it waits for). Empty batches (keep-alives) pass."""
    first = True
    async for batch in batches:
        selected = [e for e in batch if types is None or e.type in types]
        if first:
            for index, event in enumerate(selected):
                if event.type != "queued":
                    stamp = {"run_id": run_id, "conversation_id": conversation_id}
                    selected[index], first = event.model_copy(update=stamp), False
                    break
        if selected or not batch:
            yield selected
