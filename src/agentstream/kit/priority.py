"""New streams first: token loops give way while a stream is being set up, within a budget.

One event loop runs every stream of a worker. A stream being set up (the chat gate, the
prepare transaction) needs a handful of short turns on the loop, each one queued behind every
ready token of every stream already running; under load its first event would wait for
thousands of other streams' tokens. So while a stream is being set up, running streams pause
before their next token and the loop serves the setup first.

The pause is bounded twice over, so that nobody can slow the running streams at will:

- **Only setups that use the loop count.** A request becomes a setup once it is
  authenticated (a bad token never counts), and a setup that waits in a queue (for SQLite's
  write lock or a pooled connection: ``parked()``) does not count while it waits: it cannot
  use the turns the running streams would give it.
- **A total budget per stream.** A running stream pauses at most ``max_pause_s`` at a time
  and at most ``share`` of its own life in all (50 ms per second): a steady arrival of new
  streams slows the running ones by at most 5 %, never stops them.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass

# A running stream pauses at most this long at a time...
MAX_PAUSE_S = 0.05
# ... and at most this share of its life in all.
SHARE = 0.05


@dataclass
class _Setup:
    parked: int = 0  # nested waits in a queue (see ``SetupFirst.parked``)


# The setup the current task belongs to (tasks it starts inherit it).
_current: ContextVar[_Setup | None] = ContextVar("agentstream_setup", default=None)


class Pacer:
    """One running stream's side: it gives way to setups within its budget."""

    def __init__(self, gate: SetupFirst) -> None:
        self._gate = gate
        self._started = gate.clock()
        self.paused_s = 0.0  # in all, so far

    def allowance(self) -> float:
        """How long the stream may pause now: ``max_pause_s``, less what its budget lacks."""
        gate = self._gate
        earned = gate.share * (gate.clock() - self._started)
        return min(gate.max_pause_s, earned - self.paused_s)

    async def give_way(self) -> None:
        """Return at once unless a setup is using the loop; then once none is, or when the
        stream's allowance runs out."""
        gate = self._gate
        if not gate.setting_up:
            return
        allowance = self.allowance()
        if allowance <= 0:
            return
        began = gate.clock()
        try:
            await gate.wait_clear(allowance)
        finally:
            self.paused_s += gate.clock() - began


class SetupFirst:
    """Counts the setups using the loop; running streams' ``Pacer``s give way to them."""

    def __init__(
        self,
        max_pause_s: float = MAX_PAUSE_S,
        share: float = SHARE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_pause_s = max_pause_s
        self.share = share
        self.clock = clock
        self._active = 0
        self._clear: asyncio.Future[None] | None = None
        self.waiting = 0  # streams pausing now

    @property
    def setting_up(self) -> int:
        """Setups using the loop now (not those parked in a queue)."""
        return self._active

    def pacer(self) -> Pacer:
        """The budget of a stream that starts now."""
        return Pacer(self)

    @contextlib.contextmanager
    def setup(self) -> Iterator[None]:
        """Mark the current task (and the tasks it starts) as a stream being set up."""
        own = _Setup()
        token = _current.set(own)
        self._active += 1
        try:
            yield
        finally:
            _current.reset(token)
            if not own.parked:
                self._leave()

    @contextlib.contextmanager
    def parked(self) -> Iterator[None]:
        """A setup waits in a queue (a lock, a pool): it does not count meanwhile. Outside a
        setup this does nothing."""
        own = _current.get()
        if own is None:
            yield
            return
        own.parked += 1
        if own.parked == 1:
            self._leave()
        try:
            yield
        finally:
            own.parked -= 1
            if not own.parked:
                self._active += 1

    def _leave(self) -> None:
        self._active -= 1
        if not self._active and self._clear is not None:
            if not self._clear.done():
                self._clear.set_result(None)
            self._clear = None

    async def wait_clear(self, timeout_s: float) -> None:
        """Wait until no setup uses the loop, at most ``timeout_s``."""
        if self._clear is None:
            self._clear = asyncio.get_running_loop().create_future()
        self.waiting += 1
        try:
            # Shielded: a cancelled stream must not cancel the others' wake-up.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout_s):
                    await asyncio.shield(self._clear)
        finally:
            self.waiting -= 1


# One per process: every stream of a worker shares its event loop.
setup_first = SetupFirst()
