"""Read an SSE response as it is produced, and drop the connection mid-reply, in-process.

httpx's ``ASGITransport`` buffers the whole body before returning and never reports a
client disconnect, so a test of keep-alives or of a vanishing client drives the ASGI app
directly: the body arrives frame by frame, and ``disconnect()`` does what a closed TCP
connection does under uvicorn (``receive`` answers ``http.disconnect``, writes are dropped).
Same event loop as the test, so a ``Script``'s events work across the boundary.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from tests.streaming.scripted import parse_sse


class LiveSSE:
    """One SSE response being streamed: its status and its frames, one at a time."""

    def __init__(self) -> None:
        self.status: int | None = None
        self.started = asyncio.Event()
        self.gone = asyncio.Event()
        self._chunks: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._buffer = b""

    async def next_frame(self, within_s: float = 10) -> str | None:
        """The next complete frame (an event or ``: ping``), ``None`` at the end."""
        while b"\n\n" not in self._buffer:
            chunk = await asyncio.wait_for(self._chunks.get(), within_s)
            if chunk is None:
                assert not self._buffer, self._buffer
                return None
            self._buffer += chunk
        frame, self._buffer = self._buffer.split(b"\n\n", 1)
        return frame.decode()

    async def next_event(self, within_s: float = 10) -> dict[str, Any]:
        """The next data event, skipping keep-alive comments."""
        while True:
            frame = await self.next_frame(within_s)
            assert frame is not None, "stream ended"
            if not frame.startswith(":"):
                events, _ = parse_sse(frame + "\n\n")
                return dict(events[0])

    def disconnect(self) -> None:
        """The client goes away."""
        self.gone.set()


@asynccontextmanager
async def live_sse(
    app: FastAPI,
    path: str,
    payload: dict[str, Any] | None,
    headers: dict[str, str],
    method: str = "POST",
) -> AsyncIterator[LiveSSE]:
    """POST ``payload`` to ``path`` (or ``method`` it) and stream the response; the app must
    finish on exit."""
    live = LiveSSE()
    body = b"" if payload is None else json.dumps(payload).encode()
    request_sent = False
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"test"), (b"content-type", b"application/json")]
        + [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 50000),
        "server": ("test", 80),
    }

    async def receive() -> dict[str, Any]:
        nonlocal request_sent
        if not request_sent:
            request_sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await live.gone.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if live.gone.is_set():
            return  # as uvicorn does: writes to a closed connection go nowhere
        if message["type"] == "http.response.start":
            live.status = message["status"]
            live.started.set()
        elif message["type"] == "http.response.body":
            live._chunks.put_nowait(message.get("body", b""))
            if not message.get("more_body", False):
                live._chunks.put_nowait(None)

    asgi: Callable[..., Awaitable[None]] = app
    task = asyncio.create_task(asgi(scope, receive, send))
    try:
        await asyncio.wait_for(live.started.wait(), 10)
        yield live
    finally:
        live.disconnect()
        await asyncio.wait_for(task, 10)
