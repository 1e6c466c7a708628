"""A scripted model for streaming tests: pydantic-ai's FunctionModel, no network."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from pydantic_ai.messages import ModelMessage, ModelRequest, ToolReturnPart
from pydantic_ai.models.function import AgentInfo, DeltaToolCall, DeltaToolCalls, FunctionModel


@dataclass
class Script:
    """What the model streams, and what it saw.

    ``hold_after=n`` holds the stream before token ``n`` (``started`` is set) until ``release``;
    ``cancelled`` is set when the stream saw ``CancelledError``, ``closed_early`` whenever it
    ended before its last token (cancelled, closed by the consumer, or ``fail_after``).
    """

    tokens: list[str] = field(default_factory=lambda: ["Hello", " there", "!"])
    tool_call: tuple[str, dict[str, object]] | None = None
    fail_after: int | None = None
    hold_after: int | None = None
    release: asyncio.Event = field(default_factory=asyncio.Event)
    started: asyncio.Event = field(default_factory=asyncio.Event)
    cancelled: asyncio.Event = field(default_factory=asyncio.Event)
    closed_early: asyncio.Event = field(default_factory=asyncio.Event)
    calls: list[tuple[list[ModelMessage], AgentInfo]] = field(default_factory=list)
    sent: int = 0
    _called: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def wait_for_calls(self, count: int) -> None:
        """Until the model has been called ``count`` times (bound it with a timeout)."""
        async with self._called:
            await self._called.wait_for(lambda: len(self.calls) >= count)

    def model(self) -> FunctionModel:
        return FunctionModel(stream_function=self._stream, model_name="scripted")

    async def _stream(
        self, messages: list[ModelMessage], info: AgentInfo
    ) -> AsyncIterator[str | DeltaToolCalls]:
        self.calls.append((messages, info))
        async with self._called:
            self._called.notify_all()
        last = messages[-1]
        tool_done = isinstance(last, ModelRequest) and any(
            isinstance(p, ToolReturnPart) for p in last.parts
        )
        if self.tool_call and not tool_done:
            name, args = self.tool_call
            yield {0: DeltaToolCall(name=name, json_args=json.dumps(args), tool_call_id="call-1")}
            return
        finished = False
        try:
            for index, token in enumerate(self.tokens):
                if self.fail_after is not None and index == self.fail_after:
                    raise RuntimeError("upstream exploded")
                if self.hold_after is not None and index == self.hold_after:
                    self.started.set()
                    await self.release.wait()
                self.sent += 1
                yield token
            finished = True
        except asyncio.CancelledError:
            self.cancelled.set()
            raise
        finally:
            if not finished:
                self.closed_early.set()


def parse_sse(raw: str) -> tuple[list[dict[str, object]], list[str]]:
    """Split an SSE body into data events and comment lines, checking the framing: a comment
    is one line; an event is exactly ``id: <seq>`` then one ``data: <json>`` line."""
    events: list[dict[str, object]] = []
    comments: list[str] = []
    assert raw.endswith("\n\n"), raw[-50:]
    for frame in raw[:-2].split("\n\n"):
        if frame.startswith(":"):
            assert "\n" not in frame, f"multi-line comment: {frame!r}"
            comments.append(frame)
            continue
        id_line, data_line = frame.split("\n")  # exactly two lines
        assert id_line.startswith("id: "), frame
        assert data_line.startswith("data: "), frame
        event = json.loads(data_line[len("data: ") :])
        assert event["seq"] == int(id_line[len("id: ") :]), frame
        events.append(event)
    return events, comments
