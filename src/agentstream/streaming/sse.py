"""SSE encoding of a run: ``id: <seq>`` + ``data: <json>`` frames, ``: ping`` keep-alives."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from starlette.responses import StreamingResponse

from agentstream.chat import events as ev
from agentstream.runs.reading import Readable

KEEPALIVE = b": ping\n\n"
SSE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/event-stream": {}}, "description": "A stream of events."}
}
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no", "Connection": "keep-alive"}


def frame(event: ev.Event) -> bytes:
    """One SSE frame; its id is the event's ``seq``, the cursor to resume after it (an event
    that is not the run's own, such as a lost connection to the log, has none)."""
    if event.seq is None:
        return b"data: %s\n\n" % event.dump_json()
    return b"id: %d\ndata: %s\n\n" % (event.seq, event.dump_json())


async def encode_run(
    run: Readable, *, after: int, types: frozenset[str] | None, keepalive_s: float, owner: bool
) -> AsyncIterator[bytes]:
    """Frames for each event the endpoint exposes; a comment when the stream has been silent.

    ``owner`` marks the connection that started the run: its going away detaches the run.
    """
    finished = False
    try:
        async for batch in run.subscribe(after, types=types, idle_s=keepalive_s):
            # Whatever is already produced goes out in one write: nothing waits to be batched,
            # but a fast model does not pay one send per token.
            yield b"".join(frame(e) for e in batch) if batch else KEEPALIVE
        finished = True
    finally:
        if owner and not finished:
            # The client went away: the run carries on (or stops if it asked to) and is stored.
            run.detach()


def sse_response(
    run: Readable,
    *,
    keepalive_s: float,
    types: frozenset[str] | None = None,
    after: int = 0,
    owner: bool = True,
) -> StreamingResponse:
    """A ``text/event-stream`` response over a run, naming the run and its conversation."""
    headers = SSE_HEADERS | {
        "X-Run-Id": str(run.id),
        "X-Conversation-Id": str(run.conversation_id),
    }
    return StreamingResponse(
        encode_run(run, after=after, types=types, keepalive_s=keepalive_s, owner=owner),
        media_type="text/event-stream",
        headers=headers,
    )
