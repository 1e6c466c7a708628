"""Load-generator jobs of the big-data and bad-token benchmarks (run by ``bench.loadgen``).

- ``probed``: ``concurrency`` SSE clients stream back to back for ``duration_s`` while a probe
  asks ``GET /health`` every ``probe_s``: how long a request waits for the event loop.
- ``timed_get``: one authenticated GET at a time, timed (``GET /v1/usage``).
- ``gaps``: one SSE client, streams one after the other; the time between its events.
- ``flood``: ``in_flight`` requests with a bad token always in flight, until told to stop.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import sys
import time
from typing import Any
from urllib.parse import urlsplit

from bench.client import sse_stream


async def _get(url: str, path: str, token: str | None = None) -> tuple[int, float]:
    """One ``GET`` on a new connection: its status and its time to the end of the body."""
    parts = urlsplit(url)
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    request = f"GET {path} HTTP/1.1\r\nHost: {parts.netloc}\r\n{auth}Connection: close\r\n\r\n"
    start = time.perf_counter()
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    try:
        writer.write(request.encode())
        status = int((await reader.readline()).split()[1])
        await reader.read()  # to the end of the body (the server closes)
        return status, time.perf_counter() - start
    finally:
        writer.close()


async def _post(url: str, path: str, body: bytes, headers: str) -> int:
    parts = urlsplit(url)
    request = (
        f"POST {path} HTTP/1.1\r\nHost: {parts.netloc}\r\n{headers}"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    ).encode() + body
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    try:
        writer.write(request)
        status = int((await reader.readline()).split()[1])
        await reader.read()
        return status
    finally:
        writer.close()


async def probed(job: dict[str, Any]) -> dict[str, Any]:
    deadline = time.perf_counter() + job["duration_s"]
    first: list[float] = []
    failed = 0
    probe: list[float] = []

    async def client(index: int) -> None:
        nonlocal failed
        token = job["tokens"][index % len(job["tokens"])]
        while time.perf_counter() < deadline:
            result = await sse_stream(job["url"], job["path"], job["body"], token)
            if result.ok:
                first.append(result.first_event_s)
            else:
                failed += 1

    async def prober() -> None:
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            status, elapsed = await _get(job["url"], "/health")
            assert status == 200, status
            probe.append(elapsed)
            await asyncio.sleep(max(0.0, job["probe_s"] - (time.perf_counter() - started)))

    await asyncio.gather(prober(), *(client(i) for i in range(job["concurrency"])))
    return {"first_event_s": first, "failed": failed, "probe_s": probe}


async def timed_get(job: dict[str, Any]) -> dict[str, Any]:
    times: list[float] = []
    statuses: set[int] = set()
    for _ in range(job["requests"]):
        status, elapsed = await _get(job["url"], job["get_path"], job["tokens"][0])
        statuses.add(status)
        times.append(elapsed)
    return {"get_s": times, "statuses": sorted(statuses)}


async def gaps(job: dict[str, Any]) -> dict[str, Any]:
    """Inter-event gaps of ``streams`` streams in a row (the first event's wait excluded)."""
    found: list[float] = []
    failed = 0
    for _ in range(job["streams"]):
        arrivals: list[float] = []
        result = await sse_stream(
            job["url"], job["path"], job["body"], job["tokens"][0], arrivals=arrivals
        )
        failed += not result.ok
        found.extend(b - a for a, b in itertools.pairwise(arrivals))
    return {"gaps_s": found, "failed": failed}


async def flood(job: dict[str, Any]) -> dict[str, Any]:
    """Keep ``in_flight`` bad-token chat requests in flight until a line arrives on stdin."""
    body = json.dumps(job["body"]).encode()
    headers = "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.not-a-signature\r\n"
    stop = asyncio.Event()
    statuses: dict[int, int] = {}
    started = asyncio.Event()
    running = 0

    async def one() -> None:
        nonlocal running
        running += 1
        if running == job["in_flight"]:
            started.set()
        while not stop.is_set():
            try:
                status = await _post(job["url"], job["path"], body, headers)
            except OSError:
                status = 0
            statuses[status] = statuses.get(status, 0) + 1

    tasks = [asyncio.create_task(one()) for _ in range(job["in_flight"])]
    await started.wait()
    print(json.dumps({"ready": job["in_flight"]}), flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    return {"requests": sum(statuses.values()), "statuses": statuses}


JOBS = {"probed": probed, "timed_get": timed_get, "gaps": gaps, "flood": flood}
