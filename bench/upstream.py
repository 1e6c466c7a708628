"""A minimal OpenAI-compatible upstream for the cancel scenario: streams paced chunks and
records (``GET /_closes``) the monotonic instant each stream was closed early by the client.

Run: ``python -m bench.upstream --port 8200``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import time
from array import array
from collections.abc import AsyncIterator

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route

from agentstream.memory.demo import demo_vector

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


async def embeddings(request: Request) -> JSONResponse:
    """OpenAI-compatible embeddings: the demo embedder's vectors (``bench/memory.py``)."""
    body = await request.json()
    inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
    data = []
    for index, text in enumerate(inputs):
        vector = demo_vector(str(text))
        if body.get("encoding_format") == "base64":
            value: object = base64.b64encode(array("f", vector).tobytes()).decode()
        else:
            value = vector
        data.append({"object": "embedding", "index": index, "embedding": value})
    usage = {"prompt_tokens": len(inputs), "total_tokens": len(inputs)}
    return JSONResponse({"object": "list", "model": body["model"], "data": data, "usage": usage})


async def closes(_: Request) -> JSONResponse:
    return JSONResponse(CLOSES)


app = Starlette(
    routes=[
        Route("/v1/chat/completions", completions, methods=["POST"]),
        Route("/v1/embeddings", embeddings, methods=["POST"]),
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
