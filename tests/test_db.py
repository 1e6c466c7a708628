"""The database layer: SQLite's write lock handed out in turns; PostgreSQL connections pinged
only when they sat idle."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import TimeoutError as SATimeoutError

from agentstream.db import create_engine, create_session_maker, is_unreachable, transaction
from agentstream.kit.sqlite_wal import WalCheckpointer


async def test_sqlite_transactions_take_the_write_lock_first_come_first_served(
    tmp_path: Path,
) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'turns.db'}", pool_size=5)
    sessions = create_session_maker(engine, timeout_s=10)
    order: list[int] = []
    try:
        async with transaction(sessions) as first:
            await first.execute(text("CREATE TABLE t (n INTEGER)"))

            async def write(n: int) -> None:
                async with transaction(sessions) as session:
                    await session.execute(text("INSERT INTO t VALUES (:n)"), {"n": n})
                    order.append(n)

            writers = []
            for n in range(5):  # queued in this order while the first holds the lock
                writers.append(asyncio.create_task(write(n)))
                await asyncio.sleep(0)
        await asyncio.wait_for(asyncio.gather(*writers), timeout=10)
        assert order == [0, 1, 2, 3, 4]
        async with transaction(sessions) as session:
            assert (await session.execute(text("SELECT count(*) FROM t"))).scalar() == 5
    finally:
        await engine.dispose()


async def test_a_turn_not_given_within_the_timeout_is_an_unreachable_database(
    tmp_path: Path,
) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'turns.db'}")
    sessions = create_session_maker(engine, timeout_s=0.05)
    try:
        async with transaction(sessions):
            with pytest.raises(SATimeoutError) as raised:
                async with transaction(sessions):
                    pass
        assert is_unreachable(raised.value)  # answered 503, not 500
    finally:
        await engine.dispose()


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_a_postgres_connection_cut_while_idle_in_the_pool_is_replaced_before_use(
    database_url: str,
) -> None:
    engine = create_engine(database_url, pool_size=1, max_overflow=0, ping_idle_s=0)
    admin = create_engine(database_url, pool_size=1, max_overflow=0)
    pid = "SELECT pg_backend_pid()"
    try:
        async with engine.connect() as conn:
            cut = (await conn.execute(text(pid))).scalar_one()
        async with admin.connect() as conn:  # as a restart or an idle timeout would
            await conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": cut})
        async with engine.connect() as conn:  # pinged, found gone, replaced
            assert (await conn.execute(text(pid))).scalar_one() != cut
    finally:
        await engine.dispose()
        await admin.dispose()


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_a_postgres_connection_back_from_use_a_moment_ago_is_not_pinged(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = create_engine(database_url, pool_size=1, max_overflow=0, ping_idle_s=60)
    pings: list[object] = []
    monkeypatch.setattr(engine.dialect, "do_ping", pings.append)
    try:
        for _ in range(3):
            async with engine.connect() as conn:
                assert (await conn.execute(text("SELECT 1"))).scalar_one() == 1
        assert pings == []
    finally:
        await engine.dispose()


async def test_sqlite_wal_checkpoints_run_on_a_thread_never_inside_a_commit(
    tmp_path: Path,
) -> None:
    """SQLite would checkpoint (two fsyncs) inside the COMMIT that grows the WAL past 1,000
    pages, on the event loop; the engine's connections never do, the checkpointer's thread
    does."""
    path = tmp_path / "wal.db"
    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    checkpointer = WalCheckpointer(str(path), interval_s=0.01)
    try:
        async with engine.begin() as conn:
            assert (await conn.execute(text("PRAGMA wal_autocheckpoint"))).scalar() == 0
            await conn.execute(text("CREATE TABLE t (body TEXT)"))
        for _ in range(3):  # well past 1,000 pages of 4 KiB, in separate commits
            async with engine.begin() as conn:
                await conn.execute(text("INSERT INTO t VALUES (:b)"), [{"b": "x" * 4000}] * 600)
        wal = path.with_name("wal.db-wal")
        assert wal.stat().st_size > 1000 * 4096  # no commit checkpointed it
        checkpointer.start()
        async with asyncio.timeout(10):
            while not (checkpointer.last and checkpointer.last[1] > 1000):  # noqa: ASYNC110
                await asyncio.sleep(0.01)  # bounded poll of the checkpointer's rounds
        busy, frames, copied = checkpointer.last
        assert (busy, copied) == (0, frames)  # every frame copied into the database
    finally:
        await checkpointer.aclose()
        await engine.dispose()
