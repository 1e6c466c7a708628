"""SSE encoding of a run: ``data: <json>`` frames and ``: ping`` keep-alive comments."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from starlette.responses import StreamingResponse

from agentstream.chat.runs import Run

BASIC_TYPES = frozenset({"text_delta", "usage", "done", "error"})
KEEPALIVE = b": ping\n\n"
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no", "Connection": "keep-alive"}


async def encode_run(run: Run, *, advanced: bool, keepalive_s: float) -> AsyncIterator[bytes]:
    """Frames for each event the endpoint exposes; a comment when the stream has been silent."""
    finished = False
    try:
        while True:
            try:
                async with asyncio.timeout(keepalive_s):
                    event = await run.next_event()
            except TimeoutError:
                yield KEEPALIVE
                continue
            # Whatever else is already queued goes out in the same write: nothing waits to be
            # batched, but a fast model does not pay one send per token.
            batch = [event, *run.ready_events()]
            chunk = b"".join(
                b"data: " + e.dump_json() + b"\n\n"
                for e in batch
                if e is not None and (advanced or e.type in BASIC_TYPES)
            )
            if chunk:
                yield chunk
            if batch[-1] is None:
                finished = True
                return
    finally:
        if not finished:
            # The client went away: the run carries on (or stops if it asked to) and is stored.
            run.detach()


def sse_response(run: Run, *, advanced: bool, keepalive_s: float) -> StreamingResponse:
    """A ``text/event-stream`` response over a started run."""
    return StreamingResponse(
        encode_run(run, advanced=advanced, keepalive_s=keepalive_s),
        media_type="text/event-stream",
        headers=SSE_HEADERS,
    )
