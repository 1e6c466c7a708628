"""A lean load-generating client: raw HTTP/1.1 over asyncio streams for SSE, ``websockets``
for WebSocket — so the generator, not the server, is never the bottleneck."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit


@dataclass
class StreamResult:
    ok: bool
    first_event_s: float  # from sending the request to the first data frame
    done_s: float  # from sending the request to the terminal event
    events: int
    status: str = ""
    gaps_s: list[float] = field(default_factory=list)  # between consecutive text deltas


async def _read_headers(reader: asyncio.StreamReader) -> int:
    status_line = await reader.readline()
    status = int(status_line.split()[1])
    while (await reader.readline()) not in (b"\r\n", b""):
        pass
    return status


DONE = b'"type":"done"'
ERROR = b'"type":"error"'
TOKEN = b'"type":"text_delta"'  # agentstream's and the peer's text frames


async def sse_stream(
    url: str,
    path: str,
    body: dict[str, object],
    token: str | None,
    done: bytes = DONE,
    complete: bytes = b"",
    arrivals: list[float] | None = None,
) -> StreamResult:
    """POST ``body`` and read the SSE response until ``done``/``error``.

    ``done`` marks the terminal frame (pydantic-ai's Vercel stream ends with ``finish``); the
    stream counts as ok only when that frame also contains ``complete``. ``arrivals`` collects
    when each event arrived (for inter-event gaps).
    """
    parts = urlsplit(url)
    payload = json.dumps(body).encode()
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    request = (
        f"POST {path} HTTP/1.1\r\nHost: {parts.netloc}\r\n{auth}"
        f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n"
        "Connection: close\r\n\r\n"
    ).encode() + payload
    start = time.perf_counter()
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    try:
        writer.write(request)
        status = await _read_headers(reader)
        if status != 200:
            return StreamResult(False, 0.0, time.perf_counter() - start, 0, f"http {status}")
        first = 0.0
        events = 0
        buffer = b""
        gaps: list[float] = []
        last_token = 0.0
        while True:
            # Chunked transfer encoding: size line, data, CRLF.
            size_line = await reader.readline()
            if not size_line:
                break
            size = int(size_line.strip() or b"0", 16)
            if size == 0:
                break
            chunk = await reader.readexactly(size + 2)
            buffer += chunk[:-2]
            while b"\n\n" in buffer:
                frame, buffer = buffer.split(b"\n\n", 1)
                if b"data: " not in frame:
                    continue
                events += 1
                now = time.perf_counter()
                if arrivals is not None:
                    arrivals.append(now)
                if not first:
                    first = now - start
                if TOKEN in frame:
                    if last_token:
                        gaps.append(now - last_token)
                    last_token = now
                if done in frame or ERROR in frame:
                    ok = done in frame and complete in frame
                    return StreamResult(ok, first, now - start, events, gaps_s=gaps)
        return StreamResult(False, first, time.perf_counter() - start, events, "cut")
    finally:
        writer.close()
