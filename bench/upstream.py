"""A minimal OpenAI-compatible upstream for the cancel scenario: streams paced chunks and
records (``GET /_closes``) the monotonic instant each stream was closed early by the client.

Run: ``python -m bench.upstream --port 8200``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import AsyncIterator

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route

CLOSES: list[float] = []


async def completions(request: Request) -> StreamingResponse:
    body = await request.json()

    async def stream() -> AsyncIterator[bytes]:
        base = {
            "id": "chatcmpl-bench",
            "object": "chat.completion.chunk",
            "created": 0,
            "model": body.get("model"),
        }
        finished = False
        try:
            for index in range(2000):
                choice = {"index": 0, "delta": {"content": f" tok{index}"}, "finish_reason": None}
                yield b"data: " + json.dumps(base | {"choices": [choice]}).encode() + b"\n\n"
                await asyncio.sleep(0.01)
            yield b"data: [DONE]\n\n"
            finished = True
        finally:
            if not finished:
                CLOSES.append(time.monotonic())

    return StreamingResponse(stream(), media_type="text/event-stream")


async def closes(_: Request) -> JSONResponse:
    return JSONResponse(CLOSES)


app = Starlette(
    routes=[
        Route("/v1/chat/completions", completions, methods=["POST"]),
        Route("/_closes", closes),
    ]
)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
