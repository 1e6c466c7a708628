"""The SQLite driver: each statement is one hand-off to aiosqlite's thread, with the results,
row counts and errors of SQLAlchemy's own adapter."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiosqlite
import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from agentstream.db import create_engine


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'driver.db'}")
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE t (n INTEGER PRIMARY KEY, word TEXT NOT NULL)"))
    yield engine
    await engine.dispose()


@pytest.fixture
def hand_offs(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The name of every function handed to an aiosqlite thread, in order."""
    seen: list[str] = []
    original = aiosqlite.Connection._execute

    async def counted(self: aiosqlite.Connection, fn: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append(getattr(fn, "__name__", repr(fn)))
        return await original(self, fn, *args, **kwargs)

    monkeypatch.setattr(aiosqlite.Connection, "_execute", counted)
    return seen


async def test_a_statement_is_one_hand_off_and_its_rows_and_counts_come_back(
    engine: AsyncEngine, hand_offs: list[str]
) -> None:
    async with engine.connect() as conn:
        await conn.begin()  # BEGIN IMMEDIATE: a statement of its own
        hand_offs.clear()
        inserted = await conn.execute(
            text("INSERT INTO t (n, word) VALUES (:n, :w)"),
            [{"n": 1, "w": "a"}, {"n": 2, "w": "b"}],
        )
        assert inserted.rowcount == 2
        updated = await conn.execute(text("UPDATE t SET word = 'c' WHERE n = 2"))
        assert updated.rowcount == 1
        rows = await conn.execute(text("SELECT n, word FROM t ORDER BY n"))
        assert rows.all() == [(1, "a"), (2, "c")]
        assert hand_offs == ["_run"] * 3
        await conn.commit()


async def test_a_rollback_with_no_transaction_open_costs_no_hand_off(
    engine: AsyncEngine, hand_offs: list[str]
) -> None:
    async with engine.connect() as conn:
        await conn.execute(text("INSERT INTO t (n, word) VALUES (1, 'kept')"))
        await conn.commit()
        hand_offs.clear()
    assert hand_offs == []  # the pool's reset on return found nothing to roll back


async def test_a_rollback_of_an_open_transaction_undoes_it(
    engine: AsyncEngine, hand_offs: list[str]
) -> None:
    async with engine.connect() as conn:
        await conn.execute(text("INSERT INTO t (n, word) VALUES (1, 'undone')"))
        hand_offs.clear()
        await conn.rollback()
        assert hand_offs == ["rollback"]
        assert (await conn.execute(text("SELECT count(*) FROM t"))).scalar() == 0


async def test_errors_are_sqlalchemys_and_leave_the_connection_usable(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        await conn.execute(text("INSERT INTO t (n, word) VALUES (1, 'a')"))
        with pytest.raises(IntegrityError):
            await conn.execute(text("INSERT INTO t (n, word) VALUES (1, 'again')"))
        assert (await conn.execute(text("SELECT word FROM t"))).scalar_one() == "a"
