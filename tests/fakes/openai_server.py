"""A fake OpenAI-compatible server (Chat Completions) on 127.0.0.1 for provider-path tests.

Replies are scripted per model name; every request is recorded, and each stream records
whether the client closed it before the end (what a real cancel must cause upstream).
Everything a test reads is guarded by a lock and every wait is a ``threading`` primitive,
so tests running their own event loop can wait without sleeping.

Usage::

    with FakeOpenAI() as fake:
        fake.reply("m", Reply(tokens=["Hi", " there"], delay_s=0.01))
        fake.embed("e", Concepts({"cat": ("cat", "feline")}))  # /v1/embeddings for model "e"
        # point OpenAIProvider(base_url=fake.base_url) / OPENAI_BASE_URL at it, use model "m"
        fake.requests_for("m")[-1]["temperature"]
        record = fake.wait_for_stream("m")
        assert record.closed_early.wait(5)
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import AsyncGenerator
from contextlib import aclosing
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal

import anyio
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from tests.fakes.embeddings import Concepts, embedding_response


@dataclass(frozen=True)
class ToolCall:
    """A function call the fake answers with (once per conversation: not after a tool result)."""

    name: str
    arguments: dict[str, Any]
    id: str = "call_fake_1"


@dataclass
class Reply:
    """What the fake answers for one model name.

    ``fail_after=n`` stops a stream after ``n`` tokens: ``fail_mode="error"`` sends an
    OpenAI error event and ends the stream, ``"abort"`` drops the connection mid-body.
    A non-streaming request with ``fail_after`` set gets an HTTP 500.
    ``output_call`` answers only requests that offer a tool of its name (pydantic-ai's
    structured output tool, ``final_result``): the same model can chat in text and answer a
    structured request, as a real one does.
    """

    tokens: list[str] = field(default_factory=lambda: ["Hello", " from", " upstream"])
    delay_s: float = 0.0
    fail_after: int | None = None
    fail_mode: Literal["error", "abort"] = "error"
    tool_call: ToolCall | None = None
    output_call: ToolCall | None = None
    prompt_tokens: int = 11
    completion_tokens: int | None = None


@dataclass
class Recorded:
    """A recorded stream, replayed byte for byte: ``pieces`` are written one by one.

    ``status`` answers the first ``failures`` requests with that HTTP status, ``error`` as its
    JSON body and ``headers`` (then the stream is replayed); ``failures=-1`` answers every
    request so. ``abort_after=n`` drops the connection after ``n`` pieces; ``stall_after=n``
    stops sending after ``n`` pieces and waits for the client to give up.
    """

    pieces: list[bytes]
    status: int = 200
    failures: int = 0
    error: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    abort_after: int | None = None
    stall_after: int | None = None


@dataclass
class StreamRecord:
    """One streamed completion as the fake saw it."""

    model: str
    request: dict[str, Any]
    sent: int = 0
    completed: bool = False
    closed_early: threading.Event = field(default_factory=threading.Event)
    finished: threading.Event = field(default_factory=threading.Event)
    closed_at: float | None = None  # time.monotonic(), comparable across processes on Linux


class _Server(uvicorn.Server):
    """A uvicorn server that signals a ``threading.Event`` once it listens."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = threading.Event()

    async def startup(self, sockets: Any = None) -> None:
        await super().startup(sockets)
        self.ready.set()


class _Aborted(Exception):
    """The scripted failure ``abort``: leave the response body unfinished."""


class _StreamResponse(Response):
    """SSE body that stops as soon as the client disconnects (listening for it concurrently)."""

    def __init__(self, body: AsyncGenerator[bytes]) -> None:
        # Not calling Response.__init__: it would add ``Content-Length: 0``.
        self.status_code = 200
        self.background = None
        self.raw_headers = [
            (b"content-type", b"text/event-stream"),
            (b"cache-control", b"no-cache"),
        ]
        self._body = body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async with anyio.create_task_group() as group:

            async def watch() -> None:
                while (await receive())["type"] != "http.disconnect":
                    pass
                group.cancel_scope.cancel()

            group.start_soon(watch)
            start = {"type": "http.response.start", "status": 200, "headers": self.raw_headers}
            try:
                await send(start)
                async with aclosing(self._body) as body:
                    async for chunk in body:
                        await send({"type": "http.response.body", "body": chunk, "more_body": True})
                await send({"type": "http.response.body", "body": b"", "more_body": False})
            except OSError:
                pass  # the client is gone; the generator's finally recorded it
            except _Aborted:
                pass  # returning without the final body frame makes uvicorn drop the connection
            finally:
                group.cancel_scope.cancel()


class FakeOpenAI:
    """Start with ``with FakeOpenAI() as fake:``; point OPENAI_BASE_URL at ``fake.base_url``."""

    def __init__(self) -> None:
        self.port = 0
        self.default_reply = Reply()
        self.replies: dict[str, Reply] = {}
        self.concepts: dict[str, Concepts] = {}
        self.embedded: list[tuple[str, str]] = []  # (model, input) of every embedding request
        self.recorded: dict[str, Recorded] = {}
        self._failed: dict[str, int] = {}
        self.requests: list[dict[str, Any]] = []
        self.authorizations: list[str | None] = []
        self.streams: list[StreamRecord] = []
        self.stream_started = threading.Event()
        self._lock = threading.Lock()
        self._new_stream = threading.Condition(self._lock)
        app = Starlette(
            routes=[
                Route("/v1/chat/completions", self._completions, methods=["POST"]),
                Route("/v1/embeddings", self._embeddings, methods=["POST"]),
            ]
        )
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=0,
            log_level="warning",
            lifespan="off",
            timeout_graceful_shutdown=1,
        )
        self._server = _Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    @property
    def base_url(self) -> str:
        """The OpenAI base URL, ending in ``/v1``."""
        return f"http://127.0.0.1:{self.port}/v1"

    def reply(self, model: str, reply: Reply) -> None:
        """Script the answer for ``model`` (other models get ``default_reply``)."""
        with self._lock:
            self.replies[model] = reply

    def embed(self, model: str, concepts: Concepts) -> None:
        """Script ``/v1/embeddings`` for ``model`` (unscripted models get a 404)."""
        with self._lock:
            self.concepts[model] = concepts

    def embedded_for(self, model: str) -> list[str]:
        """Every input embedded with ``model``, oldest first."""
        with self._lock:
            return [text for name, text in self.embedded if name == model]

    def replay(self, model: str, recorded: Recorded) -> None:
        """Answer ``model`` with a recorded stream instead of a scripted reply (its failures
        counted afresh)."""
        with self._lock:
            self.recorded[model] = recorded
            self._failed.pop(model, None)

    def requests_for(self, model: str) -> list[dict[str, Any]]:
        """Parsed JSON bodies of the requests for ``model``, oldest first."""
        with self._lock:
            return [r for r in self.requests if r.get("model") == model]

    def streams_for(self, model: str) -> list[StreamRecord]:
        """The streamed completions for ``model``, oldest first."""
        with self._lock:
            return [s for s in self.streams if s.model == model]

    def wait_for_stream(self, model: str, index: int = 0, timeout: float = 5) -> StreamRecord:
        """Block until the ``index``-th stream for ``model`` has started; thread-safe."""
        with self._new_stream:
            if not self._new_stream.wait_for(
                lambda: len([s for s in self.streams if s.model == model]) > index, timeout
            ):
                raise TimeoutError(f"no stream #{index} for model {model!r} within {timeout}s")
            return [s for s in self.streams if s.model == model][index]

    def __enter__(self) -> FakeOpenAI:
        self._thread.start()
        if not self._server.ready.wait(10):
            raise RuntimeError("fake OpenAI server did not start")
        self.port = self._server.servers[0].sockets[0].getsockname()[1]
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._server.should_exit = True
        self._thread.join(5)

    async def _embeddings(self, request: Request) -> Response:
        body: dict[str, Any] = await request.json()
        model = str(body.get("model", ""))
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        with self._lock:
            concepts = self.concepts.get(model)
        if concepts is None:
            return JSONResponse({"error": {"message": "no such model", "type": "invalid"}}, 404)
        if concepts.delay_s:
            await asyncio.sleep(concepts.delay_s)
        if concepts.fail:
            return JSONResponse({"error": {"message": "boom", "type": "server_error"}}, 500)
        with self._lock:
            self.embedded.extend((model, str(text)) for text in inputs)
        encoding = str(body.get("encoding_format") or "float")
        return JSONResponse(embedding_response(model, concepts, [str(t) for t in inputs], encoding))

    async def _completions(self, request: Request) -> Response:
        body: dict[str, Any] = await request.json()
        model = str(body.get("model", ""))
        with self._lock:
            self.requests.append(body)
            self.authorizations.append(request.headers.get("authorization"))
            reply = self.replies.get(model, self.default_reply)
            recorded = self.recorded.get(model)
            failed = self._failed.get(model, 0)
            failing = recorded is not None and recorded.status != 200
            if failing and (recorded.failures < 0 or failed < recorded.failures):
                self._failed[model] = failed + 1
                return JSONResponse(recorded.error, recorded.status, recorded.headers)
        if recorded is not None:
            return self._replay(model, body, recorded)
        tool_call = reply.tool_call if not _after_tool_result(body) else None
        if reply.output_call is not None and reply.output_call.name in _tool_names(body):
            tool_call = reply.output_call
        if not body.get("stream"):
            if reply.fail_after is not None:
                return JSONResponse({"error": {"message": "boom", "type": "server_error"}}, 500)
            return JSONResponse(_completion(model, reply, tool_call))
        record = StreamRecord(model=model, request=body)
        with self._new_stream:
            self.streams.append(record)
            self._new_stream.notify_all()
        self.stream_started.set()
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        return _StreamResponse(_stream(model, reply, tool_call, record, include_usage))

    def _replay(self, model: str, body: dict[str, Any], recorded: Recorded) -> Response:
        record = StreamRecord(model=model, request=body)
        with self._new_stream:
            self.streams.append(record)
            self._new_stream.notify_all()
        return _StreamResponse(_pieces(recorded, record))


async def _pieces(recorded: Recorded, record: StreamRecord) -> AsyncGenerator[bytes]:
    try:
        for index, piece in enumerate(recorded.pieces):
            if index == recorded.abort_after:
                record.completed = True
                raise _Aborted
            if index == recorded.stall_after:
                await asyncio.Event().wait()  # until the client goes away
            yield piece
            record.sent += 1
        record.completed = True
    finally:
        if not record.completed:
            record.closed_at = time.monotonic()
            record.closed_early.set()
        record.finished.set()


def _after_tool_result(body: dict[str, Any]) -> bool:
    messages = body.get("messages") or []
    return bool(messages) and messages[-1].get("role") == "tool"


def _tool_names(body: dict[str, Any]) -> set[str]:
    return {str((t.get("function") or {}).get("name")) for t in body.get("tools") or []}


def _usage(reply: Reply) -> dict[str, int]:
    completion = reply.completion_tokens
    if completion is None:
        completion = len(reply.tokens)
    return {
        "prompt_tokens": reply.prompt_tokens,
        "completion_tokens": completion,
        "total_tokens": reply.prompt_tokens + completion,
    }


def _tool_call_json(call: ToolCall) -> dict[str, Any]:
    return {
        "id": call.id,
        "type": "function",
        "function": {"name": call.name, "arguments": json.dumps(call.arguments)},
    }


def _completion(model: str, reply: Reply, tool_call: ToolCall | None) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": "".join(reply.tokens)}
    if tool_call is not None:
        message = {"role": "assistant", "content": None, "tool_calls": [_tool_call_json(tool_call)]}
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": "tool_calls" if tool_call else "stop",
            }
        ],
        "usage": _usage(reply),
    }


class _Frames:
    """Chat Completions chunk frames of one stream."""

    def __init__(self, model: str) -> None:
        self.base = {
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": model,
        }

    def data(self, payload: dict[str, Any]) -> bytes:
        return b"data: " + json.dumps(payload).encode() + b"\n\n"

    def chunk(self, delta: dict[str, Any], finish: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "finish_reason": finish}
        return self.data(self.base | {"choices": [choice]})

    def tool_call(self, call: ToolCall) -> list[bytes]:
        # Name first, arguments in a later delta, as real servers stream them.
        head = {"index": 0, "id": call.id, "type": "function", "function": {"name": call.name}}
        args = {"index": 0, "function": {"arguments": json.dumps(call.arguments)}}
        return [
            self.chunk({"tool_calls": [head]}),
            self.chunk({"tool_calls": [args]}),
            self.chunk({}, "tool_calls"),
        ]

    def usage(self, reply: Reply) -> bytes:
        return self.data(self.base | {"choices": [], "usage": _usage(reply)})


async def _stream(
    model: str,
    reply: Reply,
    tool_call: ToolCall | None,
    record: StreamRecord,
    include_usage: bool,
) -> AsyncGenerator[bytes]:
    frames = _Frames(model)
    try:
        yield frames.chunk({"role": "assistant", "content": ""})
        if tool_call is not None:
            for frame in frames.tool_call(tool_call):
                yield frame
        else:
            for index, token in enumerate(reply.tokens):
                if index == reply.fail_after:
                    record.completed = True  # a scripted failure is not a client close
                    if reply.fail_mode == "abort":
                        raise _Aborted
                    error = {"error": {"message": "upstream exploded", "type": "server_error"}}
                    yield frames.data(error)
                    return
                if reply.delay_s:
                    await asyncio.sleep(reply.delay_s)
                yield frames.chunk({"content": token})
                record.sent += 1
            yield frames.chunk({}, "stop")
        if include_usage:
            yield frames.usage(reply)
        yield b"data: [DONE]\n\n"
        record.completed = True
    finally:
        if not record.completed:
            record.closed_at = time.monotonic()
            record.closed_early.set()
        record.finished.set()
