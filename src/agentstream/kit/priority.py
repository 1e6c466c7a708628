"""New streams first: token loops give way while a stream is being set up.

One event loop runs every stream of a worker. A stream being set up (authentication, the
prepare transaction) needs a handful of short turns on the loop, each one queued behind every
ready token of every stream already running; under load its first event would wait for
thousands of other streams' tokens. So while any stream is being set up, running streams
pause before their next token (for at most ``MAX_PAUSE_S`` at a time) and the loop serves the
setups first. The work is the same; only its order changes: a new stream's first event is
not held behind tokens that can wait a few milliseconds.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator

# A running stream pauses at most this long per token, so a steady arrival of new streams
# slows the running ones but never stops them.
MAX_PAUSE_S = 0.05


class SetupFirst:
    """Counts streams being set up; running streams ``give_way()`` to them."""

    def __init__(self, max_pause_s: float = MAX_PAUSE_S) -> None:
        self._max_pause_s = max_pause_s
        self._setting_up = 0
        self._clear: asyncio.Future[None] | None = None

    @property
    def setting_up(self) -> int:
        """Streams being set up now."""
        return self._setting_up

    @contextlib.contextmanager
    def setup(self) -> Iterator[None]:
        """Mark a stream as being set up for the duration of the block."""
        self._setting_up += 1
        try:
            yield
        finally:
            self._setting_up -= 1
            if not self._setting_up and self._clear is not None:
                if not self._clear.done():
                    self._clear.set_result(None)
                self._clear = None

    async def give_way(self) -> None:
        """Return at once, unless streams are being set up: then once they are (or after
        ``max_pause_s``)."""
        if not self._setting_up:
            return
        if self._clear is None:
            self._clear = asyncio.get_running_loop().create_future()
        # Shielded: a cancelled stream must not cancel the others' wake-up.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._max_pause_s):
                await asyncio.shield(self._clear)


# One per process: every stream of a worker shares its event loop.
setup_first = SetupFirst()


async def setting_up() -> AsyncIterator[None]:
    """A FastAPI dependency (``scope="function"``, listed first): the request is a stream
    being set up from its first dependency until its endpoint returns the response."""
    with setup_first.setup():
        yield
