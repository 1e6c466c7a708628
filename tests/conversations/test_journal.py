"""The reply journal: a dead process's journal is replayed at the next start (torn and corrupt
lines skipped and logged, good ones kept until stored), a live process's journal never is."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
import uuid
from pathlib import Path

import httpx
import pytest

from agentstream.app import build_state
from agentstream.conversations.journal import Journal, frame, unframe
from agentstream.conversations.writer import TurnWriter, encode
from agentstream.db import create_engine, create_session_maker
from agentstream.models import MessageStatus
from agentstream.settings import Settings
from agentstream.state import AppState
from tests.conftest import make_settings
from tests.conversations.turns import new_turns, outcome, stored
from tests.e2e.server import free_port


def journals(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.glob("*.jsonl"))


async def test_a_dead_processs_journal_is_replayed_at_start_skipping_torn_and_corrupt_lines(
    client: httpx.AsyncClient,
    state: AppState,
    settings: Settings,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    good, corrupt, torn = await new_turns(client, state, 3)
    directory = tmp_path / "next" / "journal"
    directory.mkdir(parents=True)
    damaged = bytearray(frame(encode(corrupt, outcome("corrupt"))))
    damaged[20] ^= 0x01  # a flipped bit in the payload
    (directory / "dead.jsonl").write_bytes(
        frame(encode(good, outcome("the good reply")))
        + b"not a journal line\n"
        + bytes(damaged)
        + frame(encode(torn, outcome("torn")))[:-9]  # the process died mid-write
    )
    with caplog.at_level(logging.ERROR, logger="agentstream.journal"):
        async with build_state(make_settings(settings.resolved_database_url, tmp_path / "next")):
            assert journals(directory) == []  # taken over and, all being stored, removed
    row = await stored(state.sessions, good.run_id)
    assert (row.content, row.status) == ("the good reply", MessageStatus.complete)
    for skipped in (corrupt, torn):
        assert (await stored(state.sessions, skipped.run_id)).content == ""
    assert [r.getMessage() for r in caplog.records] == [
        f"skipped 3 torn or corrupt line(s) of the reply journal {directory / 'dead.jsonl'}"
    ]


async def test_good_lines_are_kept_until_stored_when_the_database_is_down_at_start(
    client: httpx.AsyncClient, state: AppState, settings: Settings, tmp_path: Path
) -> None:
    (run,) = await new_turns(client, state, 1)
    directory = tmp_path / "data" / "journal"
    directory.mkdir(parents=True)
    payload = encode(run, outcome("kept"))
    (directory / "dead.jsonl").write_bytes(frame(payload) + b"garbage\n")
    # A worker that starts while the database is down (nothing listens on that port).
    down = create_engine(f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/gone")
    writer = TurnWriter(
        create_session_maker(down),
        checkpoint_s=3600,
        timeout_s=2,
        journal=Journal(directory, "survivor"),
    )
    try:
        await writer.start()
        assert writer.pending == 1
        # The good line is now the survivor's to keep; the dead journal is gone.
        assert journals(directory) == ["survivor.jsonl"]
        lines = (directory / "survivor.jsonl").read_bytes().splitlines()
        assert [unframe(line) for line in lines] == [payload]
        await writer.aclose()  # still down at exit: the journal stays for the next start
    finally:
        await down.dispose()
    assert journals(directory) == ["survivor.jsonl"]
    async with build_state(make_settings(settings.resolved_database_url, tmp_path / "data")):
        row = await stored(state.sessions, run.run_id)
        assert (row.content, row.status) == ("kept", MessageStatus.complete)
    assert journals(directory) == []


async def test_the_pending_replies_file_of_earlier_versions_is_replayed_once(
    client: httpx.AsyncClient, state: AppState, settings: Settings, tmp_path: Path
) -> None:
    (run,) = await new_turns(client, state, 1)
    spill = tmp_path / "data" / "pending-replies.jsonl"  # unframed JSON lines, at shutdown
    spill.parent.mkdir(parents=True)
    spill.write_bytes(encode(run, outcome("left by 0.1")) + b"\n{torn")
    async with build_state(make_settings(settings.resolved_database_url, tmp_path / "data")):
        row = await stored(state.sessions, run.run_id)
        assert (row.content, row.status) == ("left by 0.1", MessageStatus.complete)
    assert not spill.exists()


_SIBLING = """
import asyncio, sys, uuid
from pathlib import Path
from agentstream.conversations.journal import Journal

async def main() -> None:
    journal = Journal(Path(sys.argv[1]), "sibling")
    await journal.append([(uuid.UUID(sys.argv[2]), sys.stdin.buffer.readline().rstrip(b"\\n"))])
    print("journaled", flush=True)
    sys.stdin.read()  # alive until killed

asyncio.run(main())
"""


async def test_a_live_siblings_journal_is_left_alone_and_replayed_once_it_is_dead(
    client: httpx.AsyncClient, state: AppState, settings: Settings, tmp_path: Path
) -> None:
    (run,) = await new_turns(client, state, 1)
    directory = tmp_path / "data" / "journal"
    sibling = await asyncio.create_subprocess_exec(
        *(sys.executable, "-c", _SIBLING, str(directory), str(run.run_id)),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert sibling.stdin is not None
    assert sibling.stdout is not None
    try:
        sibling.stdin.write(encode(run, outcome("from the sibling")) + b"\n")
        await sibling.stdin.drain()
        assert await asyncio.wait_for(sibling.stdout.readline(), 30) == b"journaled\n"
        again = make_settings(settings.resolved_database_url, tmp_path / "data")
        async with build_state(again):  # the sibling is alive: its journal is not ours
            assert journals(directory) == ["sibling.jsonl"]
        assert (await stored(state.sessions, run.run_id)).content == ""
        sibling.send_signal(signal.SIGKILL)
        await sibling.wait()
        async with build_state(again):
            row = await stored(state.sessions, run.run_id)
            assert (row.content, row.status) == ("from the sibling", MessageStatus.complete)
        assert journals(directory) == []
    finally:
        if sibling.returncode is None:
            sibling.kill()
            await sibling.wait()
        sibling.stdin.close()  # the transport closes once its last pipe does


def test_two_workers_starting_together_never_both_take_a_journal(tmp_path: Path) -> None:
    (tmp_path / "dead.jsonl").write_bytes(frame(b'{"a": 1}'))
    first, second = Journal(tmp_path, "first"), Journal(tmp_path, "second")
    taken = first.take_orphans()
    assert [(o.path.name, o.payloads) for o in taken] == [("dead.jsonl", [b'{"a": 1}'])]
    assert second.take_orphans() == []  # locked by the first while it takes it over
    for orphan in taken:
        orphan.release()
    assert second.take_orphans() == []
    assert journals(tmp_path) == []


async def test_appends_that_arrive_together_are_written_and_synced_together(
    tmp_path: Path,
) -> None:
    journal = Journal(tmp_path, "mine")
    keys = [uuid.uuid4() for _ in range(50)]
    await asyncio.gather(*(journal.append([(key, key.bytes.hex().encode())]) for key in keys))
    lines = (tmp_path / "mine.jsonl").read_bytes().splitlines()
    assert sorted(unframe(line) for line in lines) == sorted(k.bytes.hex().encode() for k in keys)
    await journal.settle(keys[:-1])
    assert len((tmp_path / "mine.jsonl").read_bytes().splitlines()) == 50  # one still pending
    await journal.settle(keys[-1:])
    assert (tmp_path / "mine.jsonl").read_bytes() == b""  # nothing pending: emptied
    journal.close()
    assert journals(tmp_path) == []
