"""The reply journal: final writes that wait for the database, kept on disk so that a crash
(``kill -9`` included) during an outage loses none of them.

Each worker process appends to a file of its own, ``<data dir>/journal/<worker id>.jsonl``, as
soon as a reply's final write fails, and the line is on disk (fsync) before the run's terminal
event goes out. One line per reply, ``<crc32, 8 hex digits> <JSON>``: a line torn by a crash or
damaged on disk fails its checksum and is skipped (and logged) when read. Appends that arrive
while one is being written go to disk together, with one fsync (on a thread, never on the
event loop). Once nothing in the file is pending any more it is emptied, and a clean exit
removes it.

Whose journal may be replayed: a worker holds an exclusive ``flock`` on its journal for as
long as it lives, and the kernel drops it when the process dies, however it dies. At start a
worker takes over every journal whose lock it can take (a dead process's) and leaves a locked
one (a live sibling's) alone. A journal is created under a temporary name, locked, and only
then renamed into place, so nobody can take a new journal before its owner holds it. The
lock is advisory and local: workers that share a data directory must share one machine (or a
file system whose ``flock`` works across machines).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import uuid
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("agentstream.journal")

SUFFIX = ".jsonl"


def frame(payload: bytes) -> bytes:
    """One self-checking journal line (``payload`` holds no newline: it is compact JSON)."""
    return b"%08x %b\n" % (zlib.crc32(payload), payload)


def unframe(line: bytes) -> bytes | None:
    """The payload of a journal line, or ``None`` if the line is torn or corrupt."""
    if len(line) < 10 or line[8:9] != b" ":
        return None
    try:
        checksum = int(line[:8], 16)
    except ValueError:
        return None
    payload = line[9:]
    return payload if zlib.crc32(payload) == checksum else None


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass
class Orphan:
    """A dead process's journal, locked by this process while it takes over its lines."""

    path: Path
    fd: int
    payloads: list[bytes]

    def release(self) -> None:
        """Its lines are stored, or journaled again by this process: remove it."""
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        os.close(self.fd)


def _payloads(path: Path, data: bytes, *, framed: bool) -> list[bytes]:
    """The good lines' payloads; torn and corrupt lines are logged and skipped."""
    lines = data.split(b"\n")
    torn = lines.pop()  # empty when the file ends with a whole line
    good: list[bytes] = []
    bad = 1 if torn else 0
    for line in lines:
        if not line:
            continue  # the line break written after a failed write (``Journal._write``)
        payload = unframe(line) if framed else line
        if payload is None:
            bad += 1
        else:
            good.append(payload)
    if bad:
        log.error("skipped %d torn or corrupt line(s) of the reply journal %s", bad, path)
    return good


def _take(path: Path, *, framed: bool) -> Orphan | None:
    """``path`` if its owner is gone (its lock can be taken), with its good lines."""
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return None  # taken over and removed by a sibling meanwhile
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        # Another starting worker may have taken it over and removed it since we opened it.
        if os.fstat(fd).st_ino != os.stat(path).st_ino:
            raise FileNotFoundError(path)
        with os.fdopen(os.dup(fd), "rb") as source:
            data = source.read()
    except (BlockingIOError, FileNotFoundError):
        os.close(fd)  # a live process's journal, or gone
        return None
    return Orphan(path, fd, _payloads(path, data, framed=framed))


class Journal:
    """This process's journal, and the take-over of dead processes' journals."""

    def __init__(self, directory: Path, name: str, *, legacy: Path | None = None) -> None:
        self.directory = directory
        self.path = directory / f"{name}{SUFFIX}"
        self._legacy = legacy  # the unframed spill file of earlier versions, replayed once
        self._fd: int | None = None  # opened (and locked) on the first append
        self._live: set[uuid.UUID] = set()  # replies whose line is in the file and pending
        self._queue: list[bytes] = []
        self._lock = asyncio.Lock()  # one write (or truncation) at a time
        self._torn = False  # a write failed part way: start the next one on a new line

    def take_orphans(self) -> list[Orphan]:
        """The journals of processes that are gone, locked (``release`` each when done)."""
        orphans: list[Orphan] = []
        if self.directory.is_dir():
            for path in sorted(self.directory.glob(f"*{SUFFIX}")):
                if path != self.path and (orphan := _take(path, framed=True)):
                    orphans.append(orphan)
        legacy = self._legacy
        if legacy is not None and legacy.exists() and (orphan := _take(legacy, framed=False)):
            orphans.append(orphan)
        return orphans

    async def append(self, entries: Sequence[tuple[uuid.UUID, bytes]]) -> None:
        """Journal each ``(reply id, payload)``; returns once they are on disk (or, if the disk
        fails, once that is logged: the replies are still kept in memory)."""
        for key, payload in entries:
            self._live.add(key)
            self._queue.append(frame(payload))
        async with self._lock:
            if not self._queue:
                return  # written (and synced) together with an earlier append's
            batch, self._queue = self._queue, []
            await asyncio.to_thread(self._write, b"".join(batch), len(batch))

    def _write(self, data: bytes, count: int) -> None:
        try:
            if self._fd is None:
                self._fd = self._create()
            if self._torn:
                data = b"\n" + data
            os.write(self._fd, data)
            os.fsync(self._fd)
            self._torn = False
        except OSError:
            self._torn = True
            log.exception("could not journal %d reply write(s); they are kept in memory", count)

    def _create(self) -> int:
        self.directory.mkdir(parents=True, exist_ok=True)
        temporary = self.directory / f".{self.path.name}.new"
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)  # nobody else knows this name yet: at once
        os.replace(temporary, self.path)
        _fsync_directory(self.directory)
        return fd

    async def settle(self, keys: Sequence[uuid.UUID]) -> None:
        """These replies are stored (or given up): once none is pending, empty the file."""
        self._live.difference_update(keys)
        if self._live or self._fd is None:
            return
        async with self._lock:
            if not self._live and not self._queue and self._fd is not None:
                os.ftruncate(self._fd, 0)  # a crash before this only replays stored replies

    def close(self) -> None:
        """Release the journal: removed if nothing in it is pending, else kept (and unlocked)
        for the next start."""
        if self._fd is None:
            return
        if not self._live:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
        os.close(self._fd)
        self._fd = None
