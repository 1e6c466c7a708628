"""pydantic-ai's stream events → ours, recording what the reply is made of as it goes.

Text from the model or a tool enters the reply here, made ``storable`` first (a NUL or a
lone surrogate becomes U+FFFD): what a client is sent is then exactly what is stored, and
neither an event's JSON encoding nor a database write can fail on it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from pydantic_ai.messages import (
    FunctionToolCallEvent,
    FunctionToolResultEvent,
    PartDeltaEvent,
    PartStartEvent,
    RetryPromptPart,
    TextPart,
    TextPartDelta,
    ToolCallPart,
)

from agentstream.chat import events as ev
from agentstream.kit import jsonenc
from agentstream.kit.text import storable, storable_json


@dataclass
class Reply:
    """The reply so far: text, tool calls with their results, and token counts."""

    text: list[str] = field(default_factory=list)  # only ever appended to (checkpoints)
    tool_calls: dict[str, dict[str, Any]] = field(default_factory=dict)
    input_tokens: int = 0
    output_tokens: int = 0
    tools_version: int = 0  # moves when a tool call or result is added
    # Tool calls that wait for a human's decision: the run pauses once they are all known.
    approvals: list[dict[str, Any]] = field(default_factory=list)

    @property
    def content(self) -> str:
        """The text produced so far."""
        return "".join(self.text)

    def tool_call_list(self) -> list[dict[str, Any]]:
        """The tool calls so far, with their results."""
        return list(self.tool_calls.values())

    def usage(self, model: str) -> ev.Usage:
        """Token usage so far."""
        return ev.Usage(
            input_tokens=self.input_tokens,
            output_tokens=self.output_tokens,
            total_tokens=self.input_tokens + self.output_tokens,
            model=model,
        )


def _tool_result_text(content: Any) -> str:
    if isinstance(content, str):
        return storable(content)
    # orjson refuses lone surrogates in strings: they go first (and a NUL after encoding).
    return storable(jsonenc.dumps(storable_json(content)).decode())


_APPROVAL_FIELDS = {"approval_id", "tool_call_id", "tool_name", "tool_args"}


@dataclass
class Translator:
    """Turns pydantic-ai stream events into ours; the first text delta names the conversation."""

    conversation_id: uuid.UUID
    reply: Reply
    first_delta: bool = True

    def translate(self, event: object) -> ev.ChatEvent | None:
        """Our event for a pydantic-ai event, or ``None`` when it has nothing to show."""
        text: str | None = None
        if isinstance(event, PartStartEvent) and isinstance(event.part, TextPart):
            text = event.part.content  # the first token arrives with the part, not as a delta
        elif isinstance(event, PartDeltaEvent) and isinstance(event.delta, TextPartDelta):
            text = event.delta.content_delta
        elif isinstance(event, FunctionToolCallEvent):
            return self._tool_call(event)
        elif isinstance(event, FunctionToolResultEvent):
            return self._tool_result(event)
        if not text:
            return None
        if not text.isascii() or "\x00" in text:  # the common clean token skips the call
            text = storable(text)
        self.reply.text.append(text)
        delta = ev.TextDelta(
            content=text, conversation_id=self.conversation_id if self.first_delta else None
        )
        self.first_delta = False
        return delta

    def approval(self, call: ToolCallPart) -> ev.ApprovalRequired:
        """The ``approval_required`` event of a call that waits, recorded for storing."""
        event = ev.ApprovalRequired(
            approval_id=uuid.uuid4(),
            tool_call_id=storable(call.tool_call_id),
            tool_name=storable(call.tool_name),
            tool_args=storable_json(call.args_as_dict()),
        )
        self.reply.approvals.append(event.model_dump(include=_APPROVAL_FIELDS, mode="json"))
        return event

    def decided(self, call: ToolCallPart) -> None:
        """A paused call the owner decided: part of this reply's tool calls from now on."""
        call_id = storable(call.tool_call_id)
        self.reply.tool_calls[call_id] = {
            "tool_name": storable(call.tool_name),
            "tool_args": storable_json(call.args_as_dict()),
            "tool_call_id": call_id,
        }

    def _tool_call(self, event: FunctionToolCallEvent) -> ev.ToolCall:
        # Emitted when the call is complete, so the arguments are too.
        part = event.part
        call = ev.ToolCall(
            tool_name=storable(part.tool_name),
            tool_args=storable_json(part.args_as_dict()),
            tool_call_id=storable(part.tool_call_id),
        )
        self.reply.tool_calls[call.tool_call_id] = {
            "tool_name": call.tool_name,
            "tool_args": call.tool_args,
            "tool_call_id": call.tool_call_id,
        }
        self.reply.tools_version += 1
        return call

    def _tool_result(self, event: FunctionToolResultEvent) -> ev.ToolResult:
        result = event.part
        content = (
            storable(result.model_response())
            if isinstance(result, RetryPromptPart)
            else _tool_result_text(result.content)
        )
        name, call_id = storable(result.tool_name), storable(result.tool_call_id)
        record = self.reply.tool_calls.setdefault(
            call_id, {"tool_name": name, "tool_args": {}, "tool_call_id": call_id}
        )
        record["tool_result_content"] = content
        self.reply.tools_version += 1
        return ev.ToolResult(tool_name=name, tool_call_id=call_id, tool_result_content=content)
