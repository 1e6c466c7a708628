"""A run's events turned back into pydantic-ai's native agent events, for its UI encoders.

pydantic-ai's protocol encoders (``pydantic_ai.ui``: Vercel AI, AG-UI) transform a stream of
native agent events. Our runs publish our own typed events (stored, numbered, replayable,
mirrored across workers), so the standard client protocols re-create the native events from
them and hand those to the library's encoder: the protocol logic stays pydantic-ai's, and the
flow is not touched by adding a transport.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from pydantic_ai.exceptions import RunCancelled
from pydantic_ai.messages import (
    CustomEvent,
    FunctionToolCallEvent,
    FunctionToolResultEvent,
    PartDeltaEvent,
    PartEndEvent,
    PartStartEvent,
    TextPart,
    TextPartDelta,
    ToolCallPart,
    ToolReturnPart,
)
from pydantic_ai.ui import NativeEvent, UIEventStream
from starlette.responses import StreamingResponse

from agentstream.chat import events as ev
from agentstream.chat.schemas import ChatRequest
from agentstream.models import MessageStatus
from agentstream.runs.reading import Readable
from agentstream.streaming.sse import SSE_HEADERS

EventT = TypeVar("EventT")


def invalid(field: str, msg: str) -> RequestValidationError:
    """The ordinary 422 ``validation_error`` for one body field."""
    return RequestValidationError([{"loc": ("body", field), "msg": msg, "type": "value_error"}])


def chat_request(
    text: str,
    *,
    client_id: str,
    on_disconnect: str,
    context: dict[str, Any] | None = None,
    multitask: object = None,
) -> ChatRequest:
    """A protocol request's new user turn as a chat request (the same rules as every transport),
    its chat/thread id naming the conversation; invalid input is the ordinary 422."""
    try:
        return ChatRequest.model_validate(
            {
                "message": text,
                "client_id": client_id,
                "on_disconnect": on_disconnect,
                "context": context,
                "multitask": multitask,
            }
        )
    except ValidationError as exc:
        raise RequestValidationError(
            [dict(e) | {"loc": ("body", *e["loc"])} for e in exc.errors()]
        ) from exc


@dataclass(kw_only=True)
class QueuedEvent(CustomEvent, name="queued"):
    """Our ``queued`` event for the protocol encoders: a Vercel ``data-queued`` part, an AG-UI
    ``CUSTOM`` event named ``queued``; its ``run_id`` is the run the turn waits for."""

    run_id: str


@dataclass(kw_only=True)
class ApprovalEvent(CustomEvent, name="approval_required"):
    """Our ``approval_required`` event for the protocol encoders: the Vercel stream makes it a
    ``tool-approval-request`` part (streaming/ui.py); elsewhere a custom event (AG-UI
    ``CUSTOM`` named ``approval_required``) with the approval's fields."""

    approval_id: str
    tool_args: dict[str, Any]

    def to_payload(self) -> dict[str, Any]:
        """The fields of our ``approval_required`` event (the call's id and name included)."""
        return {
            "approval_id": self.approval_id,
            "tool_call_id": self.tool_call_id,
            "tool_name": self.tool_name,
            "tool_args": self.tool_args,
        }


class RunError(Exception):
    """A run that ended in an ``error`` event (or was interrupted); its text is client-safe."""

    def __init__(self, content: str, code: str) -> None:
        self.code = code
        super().__init__(content)


class _Parts:
    """Tracks the open text part, so deltas become start / delta / end part events."""

    def __init__(self) -> None:
        self.index = -1
        self.text: str | None = None  # the open text part's content so far

    def _close_text(self) -> Iterator[NativeEvent]:
        if self.text is not None:
            yield PartEndEvent(index=self.index, part=TextPart(content=self.text))
            self.text = None

    def translate(self, event: ev.ChatEvent) -> Iterator[NativeEvent]:
        """The native events for one of ours; raises at an unsuccessful end."""
        if isinstance(event, ev.TextDelta):
            if self.text is None:
                self.index, self.text = self.index + 1, event.content
                yield PartStartEvent(index=self.index, part=TextPart(content=event.content))
            else:
                self.text += event.content
                delta = TextPartDelta(content_delta=event.content)
                yield PartDeltaEvent(index=self.index, delta=delta)
        elif isinstance(event, ev.ToolCall):
            yield from self._close_text()
            self.index += 1
            call = ToolCallPart(event.tool_name, dict(event.tool_args), event.tool_call_id)
            yield PartStartEvent(index=self.index, part=call)
            yield PartEndEvent(index=self.index, part=call)
            # Our flow only publishes calls it runs, so their arguments were valid.
            yield FunctionToolCallEvent(call, args_valid=True)
        elif isinstance(event, ev.Queued):
            yield QueuedEvent(run_id=str(event.run_id))
        elif isinstance(event, ev.ApprovalRequired):
            yield ApprovalEvent(
                approval_id=str(event.approval_id),
                tool_call_id=event.tool_call_id,
                tool_name=event.tool_name,
                tool_args=dict(event.tool_args),
            )
        elif isinstance(event, ev.ToolResult):
            content = event.tool_result_content
            part = ToolReturnPart(event.tool_name, content, event.tool_call_id)
            yield FunctionToolResultEvent(part)
        elif isinstance(event, ev.Done):
            # A reply that paused for approval ends its stream as a finished one: the client
            # decides, and its next request continues the turn.
            yield from self._close_text()
            if event.status is MessageStatus.cancelled:
                raise RunCancelled("The reply was cancelled.")
            if event.status is MessageStatus.interrupted:
                raise RunError("The reply was interrupted; retry.", "interrupted")
        elif isinstance(event, ev.Error):
            raise RunError(event.content, event.error_code)
        # memory_context, typing and usage have no counterpart in the UI protocols.


async def native_events(run: Readable, after: int = 0) -> AsyncIterator[NativeEvent]:
    """The run's events after ``after`` as native agent events, until its terminal event."""
    parts = _Parts()
    async for batch in run.subscribe(after):
        for event in batch:
            for native in parts.translate(event):
                yield native


async def _encoded(
    stream: UIEventStream[Any, EventT, Any, Any], run: Readable, *, after: int, owner: bool
) -> AsyncIterator[str]:
    finished = False
    try:
        async for chunk in stream.encode_stream(stream.transform_stream(native_events(run, after))):
            yield chunk
        finished = True
    finally:
        if owner and not finished:
            # The client went away (e.g. the AI SDK's ``stop()``): detach, which cancels the run
            # when the request asked for ``on_disconnect: "cancel"``.
            run.detach()


def protocol_response(
    stream: UIEventStream[Any, EventT, Any, Any], run: Readable, *, owner: bool, after: int = 0
) -> StreamingResponse:
    """A streaming response of ``run`` in ``stream``'s protocol, naming the run and its
    conversation in headers as the other transports do."""
    headers = (
        dict(stream.response_headers or {})
        | SSE_HEADERS
        | {"X-Run-Id": str(run.id), "X-Conversation-Id": str(run.conversation_id)}
    )
    return StreamingResponse(
        _encoded(stream, run, after=after, owner=owner),
        media_type=stream.content_type,
        headers=headers,
    )
