"""The load generator, run in its own process: ``python -m bench.loadgen '<job json>'``.

Prints one JSON object with the measurements and its own CPU time, so a reader can tell
whether the generator was the bottleneck.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import resource
import sys
import time
from collections.abc import Coroutine
from typing import Any

import websockets

from bench import bigdata_jobs
from bench.client import DONE, StreamResult, sse_stream
from bench.resume import resume
from bench.stats import pct


def _raise_fd_limit() -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def _gaps(results: list[StreamResult]) -> dict[str, float | int | None]:
    """Percentiles of the gaps between consecutive text deltas of a stream, over all streams
    (what a reader sees between two tokens; the list itself would be too long to print)."""
    gaps = [g for r in results if r.ok for g in r.gaps_s]
    return {"count": len(gaps), **{f"p{q}": pct(gaps, q) for q in (50, 99, 99.9)}}


def _summary(results: list[StreamResult]) -> dict[str, Any]:
    return {
        "ok": sum(r.ok for r in results),
        "failed": sum(not r.ok for r in results),
        "events": sum(r.events for r in results),
        "first_event_s": [r.first_event_s for r in results if r.ok],
        "done_s": [r.done_s for r in results if r.ok],
        "errors": sorted({r.status for r in results if not r.ok})[:5],
        "gap_s": _gaps(results),
    }


def _sse(job: dict[str, Any], token: str | None) -> Coroutine[Any, Any, StreamResult]:
    """One SSE stream of ``job`` (its terminal and completeness markers, when it has them)."""
    done = job.get("done", "").encode() or DONE
    complete = job.get("complete", "").encode()
    return sse_stream(job["url"], job["path"], job["body"], token, done, complete)


def _ws_message(job: dict[str, Any]) -> str:
    """The WebSocket ``message`` frame: the same prompt the SSE requests send (``job["body"]``).

    One prompt for every transport, so a reply has the same length (the demo model's 100
    tokens) over SSE and WebSocket and their numbers compare like for like.
    """
    return json.dumps({"type": "message", "content": job["body"]["message"]})


async def sequential(job: dict[str, Any]) -> dict[str, Any]:
    results = [await _sse(job, job["tokens"][0]) for _ in range(job["requests"])]
    return _summary(results)


async def throughput(job: dict[str, Any]) -> dict[str, Any]:
    """``concurrency`` clients streaming back to back for ``duration_s`` (SSE: or until
    ``requests`` streams have started, when given)."""
    deadline = time.perf_counter() + job["duration_s"]
    results: list[StreamResult] = []
    started = itertools.count()
    limit = job.get("requests")

    async def sse_worker(index: int) -> None:
        token = job["tokens"][index % len(job["tokens"])]
        while time.perf_counter() < deadline and (limit is None or next(started) < limit):
            results.append(await _sse(job, token))

    message = _ws_message(job) if job["transport"] == "ws" else ""

    async def ws_worker(index: int) -> None:
        token = job["tokens"][index % len(job["tokens"])]
        query = f"?token={token}" if token else ""
        async with websockets.connect(job["ws_url"] + query, compression=None) as ws:
            await ws.recv()
            while time.perf_counter() < deadline:
                start = time.perf_counter()
                await ws.send(message)
                first, events = 0.0, 0
                while True:
                    frame = await ws.recv()
                    events += 1
                    first = first or time.perf_counter() - start
                    if '"type":"done"' in frame or '"type":"error"' in frame:
                        ok = '"type":"done"' in frame
                        results.append(StreamResult(ok, first, time.perf_counter() - start, events))
                        break

    worker = ws_worker if job["transport"] == "ws" else sse_worker
    start = time.perf_counter()
    await asyncio.gather(*(worker(i) for i in range(job["concurrency"])))
    elapsed = time.perf_counter() - start
    summary = _summary(results)
    summary["elapsed_s"] = elapsed
    return summary


async def held(job: dict[str, Any]) -> dict[str, Any]:
    tokens = job["tokens"]
    start = time.perf_counter()
    results = await asyncio.gather(
        *(_sse(job, tokens[i % len(tokens)]) for i in range(job["streams"])),
        return_exceptions=True,
    )
    ok = [r for r in results if isinstance(r, StreamResult)]
    summary = _summary(ok)
    summary["failed"] += sum(not isinstance(r, StreamResult) for r in results)
    summary["elapsed_s"] = time.perf_counter() - start
    return summary


async def idle_ws(job: dict[str, Any]) -> dict[str, Any]:
    tokens = job["tokens"]
    sockets = []
    for i in range(job["connections"]):
        token = tokens[i % len(tokens)]
        query = f"?token={token}" if token else ""
        ws = await websockets.connect(job["ws_url"] + query, compression=None, ping_interval=None)
        await ws.recv()  # auth_ok: the connection is fully established
        sockets.append(ws)
    print(json.dumps({"ready": len(sockets)}), flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)
    return {"opened": len(sockets)}


async def cancel(job: dict[str, Any]) -> dict[str, Any]:
    """Start a reply, cancel after a few deltas; time to ``done`` and the cancel instants."""
    to_done: list[float] = []
    cancelled_at: list[float] = []
    token = job["tokens"][0]
    query = f"?token={token}" if token else ""
    message = _ws_message(job)
    async with websockets.connect(job["ws_url"] + query, compression=None) as ws:
        await ws.recv()
        for _ in range(job["iterations"]):
            await ws.send(message)
            deltas = 0
            while deltas < 3:
                deltas += '"text_delta"' in await ws.recv()
            start, instant = time.perf_counter(), time.monotonic()
            await ws.send(json.dumps({"type": "cancel"}))
            while '"type":"done"' not in (frame := await ws.recv()):
                assert '"type":"error"' not in frame, frame
            to_done.append(time.perf_counter() - start)
            cancelled_at.append(instant)
    return {"to_done_s": to_done, "cancelled_at": cancelled_at}


JOBS = {
    "sequential": sequential,
    "throughput": throughput,
    "held": held,
    "idle_ws": idle_ws,
    "cancel": cancel,
    "resume": resume,
    **bigdata_jobs.JOBS,
}


def main() -> None:
    _raise_fd_limit()
    job = json.loads(sys.argv[1])
    started = time.process_time()
    result = asyncio.run(JOBS[job["kind"]](job))
    result["loadgen_cpu_s"] = time.process_time() - started
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
