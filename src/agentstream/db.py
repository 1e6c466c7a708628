"""Database engine and session factories; built by the app's lifespan, the CLI and tests."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import sqlite_vec  # type: ignore[import-untyped]
from sqlalchemy import event
from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as SATimeoutError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from agentstream.kit import sqlite_driver, sqlite_wal
from agentstream.kit.priority import setup_first

SessionMaker = async_sessionmaker[AsyncSession]


_RETURNED_AT = "agentstream_returned_at"  # when a pooled connection was last checked in
PING_IDLE_S = 1.0


def create_engine(
    url: str,
    *,
    pool_size: int = 10,
    max_overflow: int = 10,
    timeout_s: float = 60.0,
    ping_idle_s: float = PING_IDLE_S,
    statement_timeout_s: float | None = None,
) -> AsyncEngine:
    """Create the async engine; SQLite gets WAL and foreign keys, PostgreSQL a bounded pool.

    ``timeout_s`` bounds how long a request queues for a connection (or SQLite's write lock)
    before it is answered with 503; a PostgreSQL connection idle ``ping_idle_s`` or longer is
    pinged before use. ``statement_timeout_s`` bounds each PostgreSQL statement and connect
    (none for migrations, which may build large indexes).
    """
    if url.startswith("sqlite"):
        engine = create_async_engine(
            url,
            # sqlite-vec: vector distances for memory search (``memory/vectors.py``).
            module=sqlite_driver.dbapi([sqlite_vec.loadable_path()]),
            connect_args={"timeout": timeout_s},
            pool_size=pool_size,
            max_overflow=max_overflow,
            pool_timeout=timeout_s,
        )

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            # We issue BEGIN ourselves (below), so the driver must not.
            dbapi_conn.isolation_level = None
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")
            # No checkpoint inside a COMMIT on the event loop: sqlite_wal.WalCheckpointer
            # checkpoints on a thread; the WAL file is trimmed back when it starts over.
            cursor.execute("PRAGMA wal_autocheckpoint=0")
            cursor.execute(f"PRAGMA journal_size_limit={sqlite_wal.WAL_LIMIT_BYTES}")
            cursor.close()

        @event.listens_for(engine.sync_engine, "begin")
        def _begin_immediate(conn: Any) -> None:
            # A deferred transaction that reads, then writes, fails at once (SQLITE_BUSY) if
            # another writer committed in between; taking the write lock up front means only
            # this BEGIN ever waits for it (on aiosqlite's thread: ``kit/sqlite_driver.py``).
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        event.listen(engine.sync_engine.pool, "checkin", sqlite_driver.inline_again)
        return engine
    engine = create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_timeout=timeout_s,
        connect_args=_statement_timeout(statement_timeout_s),
    )
    _ping_when_idle(engine, ping_idle_s)
    return engine


def _statement_timeout(timeout_s: float | None) -> dict[str, Any]:
    """asyncpg's arguments that keep a frozen or overloaded PostgreSQL from hanging requests.

    The server cancels a statement that runs longer (``statement_timeout``); the client gives
    up on one whose answer does not come (``command_timeout``: a frozen server, a cut network,
    where the server's own timeout never reaches us) and on a connect that does not complete.
    Either way the caller gets ``TimeoutError`` (503 ``unavailable``, a final write retried).
    """
    if not timeout_s:
        return {}
    return {
        "command_timeout": timeout_s,
        "timeout": timeout_s,
        "server_settings": {"statement_timeout": str(int(timeout_s * 1000))},
    }


async def off_the_loop(connection: AsyncConnection) -> None:
    """Run the rest of this connection's transaction (its commit included) on the driver's
    thread: for background writes whose SQLite work would stall every stream (it is CPU and
    I/O in the driver, not Python). PostgreSQL statements never run on the loop: a no-op."""
    if connection.dialect.name == "sqlite":
        raw = await connection.get_raw_connection()
        if isinstance(raw.dbapi_connection, sqlite_driver.InlineConnection):
            raw.dbapi_connection.offload = True


def wal_checkpointer(engine: AsyncEngine) -> sqlite_wal.WalCheckpointer | None:
    """The WAL checkpointer a SQLite file database needs (``None`` for PostgreSQL)."""
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        return None
    return sqlite_wal.WalCheckpointer(database)


def _ping_when_idle(engine: AsyncEngine, idle_s: float) -> None:
    """Ping a pooled connection before use only if it sat idle ``idle_s`` or longer.

    SQLAlchemy's ``pool_pre_ping`` pings on every checkout: a round trip (and ~0.35 ms of CPU
    through asyncpg) per transaction, two per stream. A connection that was in use a moment
    ago is alive; one that sat idle may have been cut (a database restart, an idle timeout)
    and is pinged, and replaced if the ping fails. A connection cut while busy fails its
    statement, and SQLAlchemy then replaces every connection opened before the failure.
    """
    pool = engine.sync_engine.pool

    @event.listens_for(pool, "checkin")
    def _returned(_dbapi_conn: Any, record: Any) -> None:
        record.info[_RETURNED_AT] = time.monotonic()

    @event.listens_for(pool, "checkout")
    def _ping_if_idle(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        returned = record.info.get(_RETURNED_AT)
        if returned is None or time.monotonic() - returned < idle_s:
            return  # new, or back from use a moment ago
        try:
            engine.dialect.do_ping(dbapi_conn)
        except Exception as exc:
            # The pool discards this connection and checks out another (or opens one).
            raise DisconnectionError(f"a pooled connection is gone: {exc}") from exc


class WriteTurns:
    """SQLite's write lock, given out in turns: first come, first served.

    Every SQLite transaction takes the write lock (``BEGIN IMMEDIATE``); a connection that
    finds it taken waits in SQLite's busy handler (on aiosqlite's thread), in steps of up to
    100 ms, waking neither in order nor when the lock is released, which under load gives
    second-long waits. Queued here instead, the next transaction starts the moment the
    previous one ends, and its BEGIN finds the lock free.
    """

    def __init__(self, timeout_s: float) -> None:
        self._lock = asyncio.Lock()
        self._timeout_s = timeout_s

    @asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        """Hold the turn; waiting longer than the database timeout means unavailable."""
        try:
            await asyncio.wait_for(self._lock.acquire(), self._timeout_s)
        except TimeoutError:
            raise SATimeoutError("Timed out waiting for SQLite's write lock.") from None
        try:
            yield
        finally:
            self._lock.release()


_WRITE_TURNS = "agentstream_write_turns"  # the key of a session's WriteTurns in its ``info``


def create_session_maker(
    engine: AsyncEngine, *, timeout_s: float = 60.0, info: dict[str, Any] | None = None
) -> SessionMaker:
    """Sessions that keep loaded attributes after commit (responses are built after it);
    ``info`` is given to every session (``kit.cache.session_info`` hooks caches to commits);
    on SQLite, ``transaction()`` takes the write lock in turns (``WriteTurns``)."""
    info = dict(info or {})
    if engine.dialect.name == "sqlite":
        info[_WRITE_TURNS] = WriteTurns(timeout_s)
    return async_sessionmaker(engine, expire_on_commit=False, info=info)


@asynccontextmanager
async def transaction(session_maker: SessionMaker) -> AsyncIterator[AsyncSession]:
    """A short unit of work: commit on success, roll back on error, always release."""
    async with session_maker() as session, contextlib.AsyncExitStack() as stack:
        turns: WriteTurns | None = session.info.get(_WRITE_TURNS)
        # Queueing for the write lock or a pooled connection is not work on the loop: a
        # stream's setup that waits here does not hold running streams back (kit/priority.py).
        with setup_first.parked():
            if turns is not None:
                await stack.enter_async_context(turns.turn())
            await stack.enter_async_context(session.begin())
            await session.connection()
        yield session


# A database that cannot be reached (refused, restarting, dropped connection, pool or lock
# wait exceeded) as opposed to a bad statement. ``OSError`` covers refused connections that
# drivers raise before SQLAlchemy can wrap them (and ``TimeoutError``).
DRIVER_CONNECTION_ERRORS = (asyncpg.PostgresConnectionError, asyncpg.InterfaceError)
_UNREACHABLE = (
    SATimeoutError,
    OperationalError,
    InterfaceError,
    OSError,
    *DRIVER_CONNECTION_ERRORS,
)


def is_unreachable(exc: BaseException) -> bool:
    """Whether ``exc`` means the database is unreachable (503 and retry), not a bug (500)."""
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, _UNREACHABLE)
