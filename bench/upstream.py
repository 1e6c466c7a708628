"""The bench's OpenAI-compatible upstream: Chat Completions streams, fast enough never to be
the bottleneck (raw asyncio on uvloop, every chunk encoded once at start), in its own process.

The model name picks the reply: ``story`` is the demo model's whole story (492 tokens, so the
provider path streams the same reply as the demo path), ``story-50ms`` the same paced 50 ms per
token on a fixed schedule (as a model generates, whether or not the client keeps up); any other
name streams 2,000 tokens 10 ms apart (the cancel and resume scenarios). ``tool-call`` (the
MCP scenario, ``bench/mcp.py``) calls the first tool the request offers with
``{"text": "hello"}``, then, once the request carries the tool's result, answers in a few
words: one tool call per turn, whatever the tool is named. A request's
``max_tokens`` / ``max_completion_tokens`` caps the reply, as a real server does. Every chunk is
its own write, shaped like OpenAI's and vLLM's (``id``, ``created``, ``model``,
``system_fingerprint``, ``logprobs: null``), then a finish chunk, the usage chunk when asked for
(``stream_options.include_usage``) and ``[DONE]``. ``GET /_closes`` lists the monotonic instants
at which clients closed a stream early (the cancel scenario).

Run: ``python -m bench.upstream --port 8200``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import re
import time
from array import array
from dataclasses import dataclass
from typing import cast

import orjson
import uvloop

from agentstream.llm.demo import story_tokens
from agentstream.memory.demo import demo_vector

CLOSES: list[float] = []
_PACED = re.compile(r"^(?P<reply>.+?)-(?P<delay>\d+(?:\.\d+)?)ms$")
_TICKS = 2000
_TICK_DELAY_S = 0.01


@dataclass(frozen=True)
class Script:
    """One model name's reply: its encoded chunk frames and the pace between them."""

    frames: tuple[bytes, ...]
    delay_s: float
    finish: bytes


def _chunked(payload: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(payload), payload)


def _sse(value: object) -> bytes:
    return _chunked(b"data: " + orjson.dumps(value) + b"\n\n")


def _script(model: str) -> Script:
    paced = _PACED.match(model)
    name = paced["reply"] if paced else model
    if name == "story":
        tokens, delay_s = story_tokens(), 0.0
    else:
        tokens, delay_s = [f" tok{i}" for i in range(_TICKS)], _TICK_DELAY_S
    if paced:
        delay_s = float(paced["delay"]) / 1000
    base = {
        "id": "chatcmpl-bench",
        "object": "chat.completion.chunk",
        "created": 1767225600,
        "model": model,
        "system_fingerprint": "fp_bench",
    }

    def chunk(delta: dict[str, object], finish: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return _sse(base | {"choices": [choice]})

    frames = [chunk({"role": "assistant", "content": ""})]
    frames += [chunk({"content": token}) for token in tokens]
    return Script(tuple(frames), delay_s, chunk({}, "stop"))


TOOL_MODEL = "tool-call"
_TOOL_REPLY = ("The", " tool", " said", " hello", ".")


def _tool_turn(request: dict[str, object]) -> Script:
    """``tool-call``'s reply to ``request``: a call of its first tool, or (after the tool's
    result, or when no tool is offered) a short text."""
    base = {
        "id": "chatcmpl-bench",
        "object": "chat.completion.chunk",
        "created": 1767225600,
        "model": TOOL_MODEL,
        "system_fingerprint": "fp_bench",
    }

    def chunk(delta: dict[str, object], finish: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return _sse(base | {"choices": [choice]})

    messages = request.get("messages")
    last = messages[-1] if isinstance(messages, list) and messages else {}
    tools = request.get("tools")
    if isinstance(tools, list) and tools and isinstance(last, dict) and last.get("role") != "tool":
        name = tools[0]["function"]["name"]
        call = {"index": 0, "id": "call_bench", "type": "function"}
        frames = (
            chunk(
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [call | {"function": {"name": name, "arguments": ""}}],
                }
            ),
            chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"text":"hello"}'}}]}),
        )
        return Script(frames, 0.0, chunk({}, "tool_calls"))
    frames = (chunk({"role": "assistant", "content": ""}),)
    frames += tuple(chunk({"content": token}) for token in _TOOL_REPLY)
    return Script(frames, 0.0, chunk({}, "stop"))


_SCRIPTS: dict[str, Script] = {}
_DONE = _chunked(b"data: [DONE]\n\n") + b"0\r\n\r\n"
_HEAD = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n"
    b"transfer-encoding: chunked\r\n\r\n"
)


def _script_for(model: str) -> Script:
    script = _SCRIPTS.get(model)
    if script is None:
        script = _SCRIPTS[model] = _script(model)
    return script


def _usage_frame(model: str, completion: int) -> bytes:
    base = {
        "id": "chatcmpl-bench",
        "object": "chat.completion.chunk",
        "created": 1767225600,
        "model": model,
        "system_fingerprint": "fp_bench",
        "choices": [],
        "usage": {
            "prompt_tokens": 12,
            "completion_tokens": completion,
            "total_tokens": 12 + completion,
        },
    }
    return _sse(base)


class _Connection(asyncio.Protocol):
    """One HTTP/1.1 keep-alive connection: requests in, one streamed response at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = b""
        self.streaming: asyncio.Task[None] | None = None
        self.open = True

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast("asyncio.Transport", transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.open = False
        if self.streaming is not None and not self.streaming.done():
            CLOSES.append(time.monotonic())
            self.streaming.cancel()

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while self.streaming is None or self.streaming.done():
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buffer[:end].decode("latin-1")
            length = 0
            for line in head.split("\r\n")[1:]:
                key, _, value = line.partition(":")
                if key.strip().lower() == "content-length":
                    length = int(value)
            if len(self.buffer) < end + 4 + length:
                return
            body = self.buffer[end + 4 : end + 4 + length]
            self.buffer = self.buffer[end + 4 + length :]
            self._respond(head.split(" ", 2)[:2], body)

    def _respond(self, line: list[str], body: bytes) -> None:
        assert self.transport is not None
        if line == ["GET", "/_closes"]:
            payload = orjson.dumps(CLOSES)
            self.transport.write(
                b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                b"content-length: %d\r\n\r\n%s" % (len(payload), payload)
            )
            return
        request = orjson.loads(body) if body else {}
        if line == ["POST", "/v1/embeddings"]:
            self._json(_embeddings(request))
            return
        self.streaming = asyncio.get_running_loop().create_task(self._stream(request))

    def _json(self, value: object) -> None:
        assert self.transport is not None
        payload = orjson.dumps(value)
        self.transport.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
            b"content-length: %d\r\n\r\n%s" % (len(payload), payload)
        )

    async def _stream(self, request: dict[str, object]) -> None:
        assert self.transport is not None
        model = str(request.get("model", ""))
        script = _tool_turn(request) if model == TOOL_MODEL else _script_for(model)
        cap = request.get("max_completion_tokens") or request.get("max_tokens")
        frames = script.frames[: 1 + cap] if isinstance(cap, int) else script.frames
        write = self.transport.write
        write(_HEAD)
        start = time.monotonic()
        for index, frame in enumerate(frames):
            if script.delay_s and index > 1:
                # A fixed schedule: the upstream keeps its pace whether or not the client reads.
                await asyncio.sleep(
                    max(0.0, start + (index - 1) * script.delay_s - time.monotonic())
                )
                if not self.open:
                    return
            write(frame)
        write(script.finish)
        options = request.get("stream_options")
        if isinstance(options, dict) and options.get("include_usage"):
            write(_usage_frame(model, len(frames) - 1))
        write(_DONE)


def _embeddings(body: dict[str, object]) -> dict[str, object]:
    """OpenAI-compatible embeddings: the demo embedder's vectors (``bench/memory.py``)."""
    raw = body["input"]
    inputs = raw if isinstance(raw, list) else [raw]
    data = []
    for index, text in enumerate(inputs):
        vector = demo_vector(str(text))
        if body.get("encoding_format") == "base64":
            value: object = base64.b64encode(array("f", vector).tobytes()).decode()
        else:
            value = vector
        data.append({"object": "embedding", "index": index, "embedding": value})
    usage = {"prompt_tokens": len(inputs), "total_tokens": len(inputs)}
    return {"object": "list", "model": body["model"], "data": data, "usage": usage}


async def _serve(port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(_Connection, "127.0.0.1", port, backlog=4096)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvloop.run(_serve(args.port))


if __name__ == "__main__":
    main()
