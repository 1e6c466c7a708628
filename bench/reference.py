"""The reference: a bare Starlette app on uvicorn streaming the same framing from the same
paced token source — no auth, database, memory or agent. What agentstream is measured against.

Run: ``python -m bench.reference --port 8100 --delay-ms 0``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import uuid
from collections.abc import AsyncIterator

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from bench.tokens import paced_tokens

USAGE = {"input_tokens": 10, "output_tokens": 100, "total_tokens": 110, "model": "reference"}


def _frame(event: dict[str, object]) -> str:
    return json.dumps(event, separators=(",", ":"))


async def _events(tokens: int, delay_s: float) -> AsyncIterator[dict[str, object]]:
    conversation, message = str(uuid.uuid4()), str(uuid.uuid4())
    yield {"type": "memory_context", "memory_count": 0}
    yield {"type": "typing"}
    first = True
    async for token in paced_tokens(tokens, delay_s):
        event: dict[str, object] = {"type": "text_delta", "content": token}
        if first:
            event["conversation_id"], first = conversation, False
        yield event
    yield {"type": "usage", "usage": USAGE}
    yield {
        "type": "done",
        "conversation_id": conversation,
        "message_id": message,
        "usage": USAGE,
        "status": "complete",
    }


def build_app(tokens: int, delay_s: float) -> Starlette:
    async def stream(request: Request) -> StreamingResponse:
        await request.body()

        async def body() -> AsyncIterator[bytes]:
            async for event in _events(tokens, delay_s):
                yield f"data: {_frame(event)}\n\n".encode()

        return StreamingResponse(
            body(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    async def ws(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text(_frame({"type": "auth_ok"}))
        active: asyncio.Task[None] | None = None

        async def run() -> None:
            async for event in _events(tokens, delay_s):
                await websocket.send_text(_frame(event))

        try:
            while True:
                frame = json.loads(await websocket.receive_text())
                if frame.get("type") == "message" and (active is None or active.done()):
                    active = asyncio.create_task(run())
                elif frame.get("type") == "cancel" and active is not None and not active.done():
                    active.cancel()
                    await websocket.send_text(_frame({"type": "done", "status": "cancelled"}))
                elif frame.get("type") == "ping":
                    await websocket.send_text(_frame({"type": "pong"}))
        except WebSocketDisconnect:
            if active is not None:
                active.cancel()

    return Starlette(routes=[Route("/stream", stream, methods=["POST"]), WebSocketRoute("/ws", ws)])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--tokens", type=int, default=100)
    parser.add_argument("--delay-ms", type=float, default=0.0)
    args = parser.parse_args()
    uvicorn.run(
        build_app(args.tokens, args.delay_ms / 1000),
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        ws_max_size=64 * 1024,
    )


if __name__ == "__main__":
    main()
