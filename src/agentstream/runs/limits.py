"""How many runs a user has in flight: at most ``AGENTSTREAM_MAX_ACTIVE_RUNS_PER_USER``.

In process with one worker; through Redis (``runs.redis``) when workers share the count.
"""

from __future__ import annotations

import uuid
from collections import Counter
from typing import Protocol

from agentstream.kit.errors import TooManyRuns


class Slot(Protocol):
    """One of a user's concurrent runs; released once when the run ends."""

    async def release(self) -> None:
        """Give the slot back (idempotent)."""
        ...


class ActiveRuns(Protocol):
    """Counts users' runs in flight."""

    async def acquire(self, user_id: uuid.UUID, limit: int) -> Slot:
        """Take a slot, or raise ``TooManyRuns`` when the user has ``limit`` already
        (``limit <= 0`` means no cap)."""
        ...


class _MemorySlot:
    def __init__(self, counts: Counter[uuid.UUID], user_id: uuid.UUID) -> None:
        self._counts = counts
        self._user_id: uuid.UUID | None = user_id

    async def release(self) -> None:
        if self._user_id is not None:
            self._counts[self._user_id] -= 1
            if self._counts[self._user_id] <= 0:
                del self._counts[self._user_id]
            self._user_id = None


class MemoryActiveRuns:
    """The count of one worker (exact: there is no other)."""

    def __init__(self) -> None:
        self._counts: Counter[uuid.UUID] = Counter()

    async def acquire(self, user_id: uuid.UUID, limit: int) -> Slot:
        if limit > 0 and self._counts[user_id] >= limit:
            raise TooManyRuns(f"At most {limit} replies can stream at once; wait for one to end.")
        self._counts[user_id] += 1
        return _MemorySlot(self._counts, user_id)
