"""The resume job of the load generator: reconnect to a running run and time the first
replayed event, optionally through a chosen worker.

Connections are pinned to a worker by asking ``/health`` (which answers with the worker's pid)
on a keep-alive connection before sending the real request on it: each new connection lands on
whichever worker accepts it, so we open connections until one reaches the worker we want.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

# Replay this many events before the live edge, so the first event is a replayed one.
BACKLOG = 5
PIN_ATTEMPTS = 200


@dataclass
class Conn:
    """One raw HTTP/1.1 connection, kept alive between requests."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    host: str
    length: int = 0  # Content-Length of the last response, 0 when chunked
    run_id: str = ""  # X-Run-Id of the last response

    async def send(self, method: str, path: str, headers: dict[str, str], body: bytes = b"") -> int:
        """Send a request and read the status line and headers; the status code."""
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host}"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        if body:
            lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        status = int((await self.reader.readline()).split()[1])
        self.length = 0
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode().partition(":")
            if name.lower() == "content-length":
                self.length = int(value)
            elif name.lower() == "x-run-id":
                self.run_id = value.strip()
        return status

    async def frames(self) -> AsyncIterator[tuple[int, bytes]]:
        """The SSE frames of a chunked response body, as ``(seq, data)``."""
        buffer = b""
        while size := int((await self.reader.readline()).strip() or b"0", 16):
            buffer += (await self.reader.readexactly(size + 2))[:-2]
            while b"\n\n" in buffer:
                frame, buffer = buffer.split(b"\n\n", 1)
                seq, data = 0, b""
                for line in frame.split(b"\n"):
                    if line.startswith(b"id: "):
                        seq = int(line[4:])
                    elif line.startswith(b"data: "):
                        data = line[6:]
                if data:
                    yield seq, data

    def close(self) -> None:
        self.writer.close()


async def connect(url: str, pid: int | None = None, avoid: int | None = None) -> tuple[Conn, int]:
    """A connection to the worker ``pid`` (or to any worker but ``avoid``; any worker when
    both are None), and that worker's pid."""
    parts = urlsplit(url)
    for _ in range(PIN_ATTEMPTS):
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        conn = Conn(reader, writer, parts.netloc)
        await conn.send("GET", "/health", {})
        got = int(json.loads(await reader.readexactly(conn.length))["pid"])
        if (pid is None or got == pid) and got != avoid:
            return conn, got
        conn.close()
    raise RuntimeError(f"no connection reached worker {pid or f'but {avoid}'} in time")


@dataclass
class LiveRun:
    """A run started by this job and followed to its end by its starting connection."""

    id: str
    pid: int
    conn: Conn
    seq: int = 0
    ready: asyncio.Event = field(default_factory=asyncio.Event)  # enough events to replay
    finished: asyncio.Event = field(default_factory=asyncio.Event)

    async def follow(self) -> None:
        try:
            async for seq, data in self.conn.frames():
                self.seq = seq or self.seq
                if self.seq > BACKLOG:
                    self.ready.set()
                if b'"type":"done"' in data or b'"type":"error"' in data:
                    break
        finally:
            self.finished.set()
            self.ready.set()
            self.conn.close()


async def start_run(job: dict[str, Any]) -> tuple[LiveRun, asyncio.Task[None]]:
    """Start a long reply and wait until it has enough events to replay."""
    conn, got = await connect(job["url"])
    body = json.dumps(job["body"]).encode()
    status = await conn.send("POST", job["path"], _auth(job), body)
    if status != 200:
        raise RuntimeError(f"starting a run: HTTP {status}")
    run = LiveRun(conn.run_id, got, conn)
    task = asyncio.create_task(run.follow())
    await asyncio.wait_for(run.ready.wait(), 60)
    return run, task


async def resume_once(job: dict[str, Any], run: LiveRun) -> tuple[float, int]:
    """Reconnect (to the run's worker or another, per ``job["via"]``) and time the request
    until the first replayed event; the latency and the pid that served it."""
    if job["via"] == "same":
        conn, pid = await connect(job["url"], pid=run.pid)
    else:
        conn, pid = await connect(job["url"], avoid=run.pid)
    try:
        after = max(0, run.seq - BACKLOG)
        headers = {"Authorization": f"Bearer {job['tokens'][0]}", "Last-Event-ID": str(after)}
        start = time.perf_counter()
        status = await conn.send("GET", f"/v1/runs/{run.id}/events", headers)
        if status != 200:
            raise RuntimeError(f"resuming: HTTP {status}")
        async for seq, _ in conn.frames():
            if seq != after + 1:
                raise RuntimeError(f"resumed after {after} but the first event is {seq}")
            return time.perf_counter() - start, pid
        raise RuntimeError("the resumed stream ended without an event")
    finally:
        conn.close()


async def _cancel(job: dict[str, Any], run: LiveRun) -> None:
    """Stop a run we no longer need, so it does not load the next measurement."""
    conn, _ = await connect(job["url"])
    try:
        await conn.send("POST", f"/v1/runs/{run.id}/cancel", _auth(job))
    finally:
        conn.close()


def _auth(job: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {job['tokens'][0]}"}


async def resume(job: dict[str, Any]) -> dict[str, Any]:
    """``job["resumes"]`` sequential resumes of running runs; ``job["via"]`` is "same" (the
    run's own worker) or "other" (another worker: the events come through Redis)."""
    latencies: list[float] = []
    runs = 0
    pids: set[int] = set()
    while len(latencies) < job["resumes"]:
        run, task = await start_run(job)
        runs += 1
        pids.add(run.pid)
        while len(latencies) < job["resumes"] and not run.finished.is_set():
            latency, pid = await resume_once(job, run)
            latencies.append(latency)
            pids.add(pid)
        if not run.finished.is_set():
            await _cancel(job, run)
        await task
    return {"resume_s": latencies, "runs": runs, "pids": sorted(pids)}
