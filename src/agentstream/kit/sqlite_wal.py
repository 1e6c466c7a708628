"""SQLite WAL checkpoints on a worker thread, never inside a ``COMMIT`` on the event loop.

SQLite checkpoints by itself in the ``COMMIT`` that grows the WAL past 1,000 pages: fsyncs of
the WAL and of the database file, milliseconds, on whatever thread commits, which here is the
event loop's (``kit/sqlite_driver.py``). Connections turn that off (``wal_autocheckpoint=0``,
``db.create_engine``) and a ``WalCheckpointer`` checkpoints every second instead, on a worker
thread with a connection of its own (through the driver's SQLite library: two copies of the
library in one process would not see each other's locks).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3

from agentstream.kit.sqlite_driver import sqlite_module

log = logging.getLogger("agentstream.db")

# A WAL bigger than this after a checkpoint (readers kept it from completing for a while) is
# checkpointed with TRUNCATE, which waits for them (on the checkpointer's thread, a second at
# most; a writer that finds the lock taken meanwhile waits on aiosqlite's thread). Connections
# trim the file back to this size when the WAL starts over (``journal_size_limit``).
WAL_LIMIT_BYTES = 64 * 1024 * 1024
_TRUNCATE_WAIT_MS = 1000


class WalCheckpointer:
    """Checkpoints a SQLite database's WAL every ``interval_s``, on a worker thread.

    ``PASSIVE`` copies what it can without waiting for (or blocking) readers and writers; once
    the WAL is fully copied the next writer starts it over. ``last`` is the last checkpoint's
    ``(busy, WAL frames, frames copied)``.
    """

    def __init__(self, path: str, *, interval_s: float = 1.0) -> None:
        self._path = path
        self._interval = interval_s
        self._module = sqlite_module()
        self._conn: sqlite3.Connection | None = None
        self._task: asyncio.Task[None] | None = None
        self._round: asyncio.Future[tuple[int, int, int]] | None = None
        self.last: tuple[int, int, int] | None = None

    def start(self) -> None:
        """Start checkpointing."""
        self._task = asyncio.create_task(self._loop(), name="sqlite-wal-checkpoints")

    async def _loop(self) -> None:
        failing = False
        while True:
            await asyncio.sleep(self._interval)
            # Shielded: cancelling the loop cannot stop the thread, and the connection must
            # not be closed under it (``aclose`` waits for this round).
            self._round = asyncio.ensure_future(asyncio.to_thread(self.checkpoint))
            try:
                self.last = await asyncio.shield(self._round)
            except (self._module.Error, OSError):
                if not failing:  # e.g. the file is gone; logged once until it works again
                    log.exception("SQLite WAL checkpoint failed")
                failing = True
            else:
                failing = False

    def checkpoint(self) -> tuple[int, int, int]:
        """One checkpoint (blocking: call it on a worker thread)."""
        if self._conn is None:
            # Used by one executor thread at a time, not always the same one.
            self._conn = self._module.connect(self._path, check_same_thread=False, timeout=0)
        conn = self._conn
        busy, frames, copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        with contextlib.suppress(FileNotFoundError):
            if os.path.getsize(f"{self._path}-wal") > WAL_LIMIT_BYTES:
                conn.execute(f"PRAGMA busy_timeout={_TRUNCATE_WAIT_MS}")
                try:
                    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
                finally:
                    conn.execute("PRAGMA busy_timeout=0")
        return busy, frames, copied

    async def aclose(self) -> None:
        """Stop (the last connection to close checkpoints what is left)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._round is not None:
            with contextlib.suppress(self._module.Error, OSError):
                await self._round
        if self._conn is not None:
            self._conn.close()
            self._conn = None
