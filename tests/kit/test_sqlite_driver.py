"""The SQLite driver: statements run on the event loop's thread, with the results, row counts
and errors of SQLAlchemy's own adapter; only a wait for the write lock goes to aiosqlite's
thread, so the loop never blocks on it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiosqlite
import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

from agentstream.db import create_engine, off_the_loop
from agentstream.kit.sqlite_driver import sqlite_module


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "driver.db"


@pytest.fixture
async def engine(path: Path) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(f"sqlite+aiosqlite:///{path}", timeout_s=10)
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE t (n INTEGER PRIMARY KEY, word TEXT NOT NULL)"))
    yield engine
    await engine.dispose()


@dataclass
class HandOffs:
    """The name of every function handed to an aiosqlite thread, in order."""

    names: list[str] = field(default_factory=list)
    seen: asyncio.Event = field(default_factory=asyncio.Event)

    def reset(self) -> None:
        self.names.clear()
        self.seen.clear()


@pytest.fixture
def hand_offs(monkeypatch: pytest.MonkeyPatch) -> HandOffs:
    recorded = HandOffs()
    original = aiosqlite.Connection._execute

    async def counted(self: aiosqlite.Connection, fn: Any, *args: Any, **kwargs: Any) -> Any:
        recorded.names.append(getattr(fn, "__name__", repr(fn)))
        recorded.seen.set()
        return await original(self, fn, *args, **kwargs)

    monkeypatch.setattr(aiosqlite.Connection, "_execute", counted)
    return recorded


async def test_statements_commits_and_rollbacks_run_without_a_hand_off(
    engine: AsyncEngine, hand_offs: HandOffs
) -> None:
    async with engine.connect() as conn:
        hand_offs.reset()
        inserted = await conn.execute(
            text("INSERT INTO t (n, word) VALUES (:n, :w)"),
            [{"n": 1, "w": "a"}, {"n": 2, "w": "b"}],
        )
        assert inserted.rowcount == 2
        updated = await conn.execute(text("UPDATE t SET word = 'c' WHERE n = 2"))
        assert updated.rowcount == 1
        rows = await conn.execute(text("SELECT n, word FROM t ORDER BY n"))
        assert rows.all() == [(1, "a"), (2, "c")]
        await conn.commit()
        await conn.execute(text("DELETE FROM t"))
        await conn.rollback()  # undone
        assert (await conn.execute(text("SELECT count(*) FROM t"))).scalar() == 2
    assert hand_offs.names == []


async def test_a_background_transaction_runs_its_statements_and_commit_off_the_loop(
    engine: AsyncEngine, hand_offs: HandOffs
) -> None:
    """``off_the_loop`` (a checkpoint of every streaming reply): the statements and the commit
    go to aiosqlite's thread; back in the pool, the connection runs inline again."""
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))  # connected (and BEGIN run) before counting
        hand_offs.reset()
        await off_the_loop(conn)
        await conn.execute(text("INSERT INTO t (n, word) VALUES (:n, :w)"), [{"n": 1, "w": "a"}])
        await conn.commit()
        assert hand_offs.names == ["_waiting", "_waiting"]  # the statement, the commit
    hand_offs.reset()
    async with engine.begin() as conn:
        assert (await conn.execute(text("SELECT word FROM t"))).scalar_one() == "a"
    assert hand_offs.names == []


async def test_errors_are_sqlalchemys_and_leave_the_connection_usable(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        await conn.execute(text("INSERT INTO t (n, word) VALUES (1, 'a')"))
        with pytest.raises(IntegrityError):
            await conn.execute(text("INSERT INTO t (n, word) VALUES (1, 'again')"))
        assert (await conn.execute(text("SELECT word FROM t"))).scalar_one() == "a"


async def test_a_begin_that_finds_the_write_lock_taken_waits_off_the_loop(
    engine: AsyncEngine, path: Path, hand_offs: HandOffs
) -> None:
    async with engine.connect() as warm:  # the pooled connection exists before the wait
        await warm.execute(text("SELECT 1"))
    # Another process, say; through the driver's SQLite library: two copies of SQLite in one
    # process do not see each other's locks.
    other = sqlite_module().connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        hand_offs.reset()

        async def write() -> None:
            async with engine.begin() as conn:
                await conn.execute(text("INSERT INTO t (n, word) VALUES (1, 'waited')"))

        writer = asyncio.create_task(write())
        # The loop runs while the writer waits for the lock (on the loop, this would hang).
        await asyncio.wait_for(hand_offs.seen.wait(), timeout=5)
        assert not writer.done()
        assert hand_offs.names == ["_waiting"]
        for _ in range(20):  # still waiting, and the loop still turns
            await asyncio.sleep(0)
        assert not writer.done()
        other.execute("COMMIT")
        await asyncio.wait_for(writer, timeout=10)
    finally:
        other.close()
    async with engine.connect() as conn:
        assert (await conn.execute(text("SELECT word FROM t"))).scalar_one() == "waited"


async def test_a_lock_not_released_within_the_timeout_is_an_operational_error(
    path: Path,
) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{path}", timeout_s=0.05)
    other = sqlite_module().connect(path, isolation_level=None)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE u (n INTEGER)"))
        other.execute("BEGIN IMMEDIATE")
        with pytest.raises(OperationalError, match="locked"):
            async with engine.begin() as conn:
                await conn.execute(text("INSERT INTO u VALUES (1)"))
    finally:
        other.close()
        await engine.dispose()
