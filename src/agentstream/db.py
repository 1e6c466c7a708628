"""Database engine and session factories; built by the app's lifespan, the CLI and tests."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy import event
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as SATimeoutError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from agentstream.kit import sqlite_driver

SessionMaker = async_sessionmaker[AsyncSession]


def create_engine(
    url: str, *, pool_size: int = 5, max_overflow: int = 10, timeout_s: float = 60.0
) -> AsyncEngine:
    """Create the async engine; SQLite gets WAL and foreign keys, PostgreSQL a bounded pool.

    ``timeout_s`` bounds how long a request queues for a connection (or SQLite's write lock)
    before it is answered with 503.
    """
    if url.startswith("sqlite"):
        engine = create_async_engine(
            url,
            module=sqlite_driver.dbapi(),
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
            cursor.close()

        @event.listens_for(engine.sync_engine, "begin")
        def _begin_immediate(conn: Any) -> None:
            # A deferred transaction that reads, then writes, fails at once (SQLITE_BUSY) if
            # another writer committed in between; taking the write lock up front makes
            # concurrent requests queue on the busy timeout instead.
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    return create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_timeout=timeout_s,
        pool_pre_ping=True,
    )


class WriteTurns:
    """SQLite's write lock, given out in turns: first come, first served.

    Every SQLite transaction takes the write lock (``BEGIN IMMEDIATE``); a connection that
    finds it taken sleeps in SQLite's busy handler in steps of up to 100 ms, waking neither in
    order nor when the lock is released, which under load gives second-long waits. Queued
    here instead, the next transaction starts the moment the previous one ends.
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
    async with session_maker() as session:
        turns: WriteTurns | None = session.info.get(_WRITE_TURNS)
        async with turns.turn() if turns else contextlib.nullcontext(), session.begin():
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
