"""SQLAlchemy's aiosqlite adapter, with statements run on the event loop's thread.

aiosqlite runs every call on its connection's thread, and SQLAlchemy's adapter makes four
calls per statement (open a cursor, execute, fetch, close it). A hand-off costs ~90 µs of CPU
(a queue put, a thread wake-up, a wake-up back) and, under load, a wait for the GIL; a whole
SQLite transaction of small statements costs ~15 µs. So here a statement, a commit and a
rollback run right where they are called, and nothing is handed off unless it must wait.

Only a lock makes SQLite wait: ``BEGIN IMMEDIATE`` while another connection (a transaction in
this process awaiting something else, or another process) holds the write lock. Connections
get no busy timeout, so such a statement fails at once with ``SQLITE_BUSY``, and is run again
on aiosqlite's thread with the engine's timeout: the wait happens there, never on the loop.
Connect, close and server-side cursors are SQLAlchemy's own.

The SQLite library is ``pysqlite3`` when installed (a build that can load extensions, such as
sqlite-vec; pyenv's and python.org's builds of the standard module cannot), else the standard
``sqlite3``. Extensions given to ``dbapi`` are loaded into every new connection. Anything
else in the process that opens the database must use ``sqlite_module()`` too: two copies of
the SQLite library in one process do not see each other's file locks (POSIX locks are per
process), so their writers could run at once.

WAL checkpoints do not run here either: SQLite would run one inside the ``COMMIT`` that grows
the WAL past 1,000 pages (an fsync of the WAL and the database file, milliseconds, on the
loop). Connections turn automatic checkpoints off (``db.create_engine``) and
``kit/sqlite_wal.py`` checkpoints on a thread of its own.

Passed to ``create_async_engine(module=...)`` for ``sqlite+aiosqlite`` URLs.
"""

from __future__ import annotations

import collections
import functools
import importlib
import sqlite3
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import TYPE_CHECKING, Any, TypeVar, cast

import aiosqlite
from sqlalchemy.connectors.asyncio import AsyncAdapt_dbapi_connection
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
)
from sqlalchemy.util.concurrency import await_

if TYPE_CHECKING:
    from sqlalchemy.connectors.asyncio import AsyncIODBAPIConnection

T = TypeVar("T")
# description, rows, rowcount, lastrowid
_Outcome = tuple[Any, list[Any], int, int | None]
_DEFAULT_TIMEOUT_S = 5.0  # sqlite3.connect's


def _statement(
    conn: sqlite3.Connection, operation: str, parameters: Any, *, many: bool
) -> _Outcome:
    """A whole statement: open a cursor, execute, fetch, close."""
    cursor = conn.cursor()
    try:
        if many:
            cursor.executemany(operation, parameters)
        elif parameters is None:
            cursor.execute(operation)
        else:
            cursor.execute(operation, parameters)
        description = cursor.description
        rows = cursor.fetchall() if description else []
        return description, rows, cursor.rowcount, cursor.lastrowid
    finally:
        cursor.close()


def sqlite_module() -> ModuleType:
    """``pysqlite3``'s DB-API module when installed, else the standard ``sqlite3``."""
    try:
        return importlib.import_module("pysqlite3.dbapi2")
    except ImportError:
        return sqlite3


def _open(
    module: ModuleType, extensions: Sequence[str], *args: Any, **kw: Any
) -> sqlite3.Connection:
    """A new connection with ``extensions`` loaded, where the build allows it (else none)."""
    conn: sqlite3.Connection = module.connect(*args, **kw)
    if extensions and hasattr(conn, "enable_load_extension"):
        conn.enable_load_extension(True)
        try:
            for path in extensions:
                conn.load_extension(path)
        finally:
            conn.enable_load_extension(False)
    return conn


def _is_busy(exc: Exception) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    return code is not None and code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


def _waiting(conn: sqlite3.Connection, timeout_ms: int, fn: Callable[[], T]) -> T:
    """``fn`` with a busy timeout: run on aiosqlite's thread, where waiting blocks nobody."""
    conn.execute(f"PRAGMA busy_timeout={timeout_ms}")
    try:
        return fn()
    finally:
        conn.execute("PRAGMA busy_timeout=0")


class InlineCursor(AsyncAdapt_aiosqlite_cursor):
    """A buffered cursor whose statements run through ``InlineConnection.run``."""

    __slots__ = ("_arraysize", "_description", "_lastrowid", "_rowcount")

    def __init__(self, adapt_connection: AsyncAdapt_dbapi_connection) -> None:
        # No aiosqlite cursor: each statement opens and closes its own.
        self._adapt_connection = adapt_connection
        self._connection = adapt_connection._connection
        self._rows = collections.deque()
        self._description: Any = None
        self._rowcount = -1
        self._lastrowid: int | None = None
        self._arraysize = 1

    @property
    def description(self) -> Any:
        return self._description

    @property
    def rowcount(self) -> int:
        return self._rowcount

    @property
    def lastrowid(self) -> int:
        return self._lastrowid  # type: ignore[return-value]

    @property
    def arraysize(self) -> int:
        return self._arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._arraysize = value

    def _run(self, operation: Any, parameters: Any, *, many: bool) -> None:
        connection: InlineConnection = self._adapt_connection  # type: ignore[assignment]

        def statement() -> _Outcome:
            return _statement(connection.sqlite, operation, parameters, many=many)

        self._description, rows, self._rowcount, self._lastrowid = connection.run(statement)
        self._rows = collections.deque(rows)

    def execute(self, operation: Any, parameters: Any = None) -> None:
        self._run(operation, parameters, many=False)

    def executemany(self, operation: Any, seq_of_parameters: Any) -> None:
        self._run(operation, seq_of_parameters, many=True)

    async def _async_soft_close(self) -> None:
        """Nothing to close: the rows are already here."""

    def close(self) -> None:
        self._rows.clear()

    def setinputsizes(self, *inputsizes: Any) -> None:
        """sqlite3 ignores input sizes."""


class InlineConnection(AsyncAdapt_aiosqlite_connection):
    __slots__ = ("_aiosqlite", "_errors", "_timeout_ms", "offload")

    _cursor_cls = InlineCursor

    def __init__(self, dbapi: Any, connection: AsyncIODBAPIConnection, timeout_s: float) -> None:
        super().__init__(dbapi, connection)
        self._aiosqlite = cast("aiosqlite.Connection", connection)
        self._timeout_ms = int(timeout_s * 1000)
        self._errors: type[Exception] = dbapi.sqlite.Error
        # Set for a background transaction whose SQLite work is long enough to stall the
        # loop (a checkpoint of every streaming reply): its statements and commit run on
        # aiosqlite's thread, where SQLite releases the GIL; cleared when back in the pool.
        self.offload = False

    @property
    def open(self) -> bool:
        return self._aiosqlite._connection is not None

    @property
    def sqlite(self) -> sqlite3.Connection:
        """The connection itself (opened with ``check_same_thread=False``)."""
        return self._aiosqlite._conn

    def run(self, fn: Callable[[], T]) -> T:
        """``fn``, from SQLAlchemy's sync side (one greenlet switch, no suspension unless it
        must wait)."""
        try:
            return await_(self._on_thread(fn) if self.offload else self._now_or_waiting(fn))
        except Exception as error:
            self._handle_exception(error)

    async def _now_or_waiting(self, fn: Callable[[], T]) -> T:
        """``fn`` now, on this thread; if it finds a lock taken, again where it can wait."""
        try:
            return fn()
        except self._errors as exc:
            if not _is_busy(exc):
                raise
        return await self._on_thread(fn)

    async def _on_thread(self, fn: Callable[[], T]) -> T:
        """``fn`` on aiosqlite's thread, with the busy timeout."""
        async with self._execute_mutex:
            # aiosqlite's own way of running a function on its thread.
            result: T = await self._aiosqlite._execute(  # type: ignore[no-untyped-call]
                _waiting, self.sqlite, self._timeout_ms, fn
            )
            return result

    def commit(self) -> None:
        if self.open:
            self.run(self.sqlite.commit)

    def rollback(self) -> None:
        if self.open and self.sqlite.in_transaction:
            self.run(self.sqlite.rollback)


class InlineDBAPI(AsyncAdapt_aiosqlite_dbapi):
    def __init__(self, sqlite: ModuleType, extensions: Sequence[str]) -> None:
        self._extensions = tuple(extensions)
        super().__init__(aiosqlite, sqlite)

    def _init_dbapi_attributes(self) -> None:
        super()._init_dbapi_attributes()
        # SQLAlchemy takes these from aiosqlite, which re-exports the standard module's: with
        # pysqlite3 they must be its own, or its errors would escape SQLAlchemy's wrapping.
        for name in (
            "DatabaseError",
            "Error",
            "IntegrityError",
            "NotSupportedError",
            "OperationalError",
            "ProgrammingError",
            "sqlite_version",
            "sqlite_version_info",
        ):
            setattr(self, name, getattr(self.sqlite, name))

    def connect(self, *arg: Any, **kw: Any) -> InlineConnection:
        timeout_s = float(kw.pop("timeout", _DEFAULT_TIMEOUT_S))
        # Used from the loop's thread as well as aiosqlite's, never from both at once.
        kw["check_same_thread"] = False
        kw["timeout"] = 0
        connector = functools.partial(_open, self.sqlite, self._extensions, *arg, **kw)

        def create(*_: Any, **__: Any) -> aiosqlite.Connection:
            connection = aiosqlite.Connection(connector, iter_chunk_size=64)
            connection._thread.daemon = True  # as SQLAlchemy's own adapter does
            return connection

        adapted = super().connect(async_creator_fn=create)
        return InlineConnection(self, adapted._connection, timeout_s)


def dbapi(extensions: Sequence[str] = ()) -> InlineDBAPI:
    """The module to give ``create_async_engine`` for ``sqlite+aiosqlite``; ``extensions``
    (paths of loadable SQLite extensions) are loaded into each connection when the SQLite
    build allows it."""
    return InlineDBAPI(sqlite_module(), extensions)


def inline_again(dbapi_connection: Any, _record: Any) -> None:
    """A pool ``checkin`` listener: a connection back in the pool runs inline again."""
    if isinstance(dbapi_connection, InlineConnection):
        dbapi_connection.offload = False
