"""pydantic-ai's stream events → ours, recording what the reply is made of as it goes."""

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
)

from agentstream.chat import events as ev
from agentstream.conversations.turns import Draft
from agentstream.kit import jsonenc


@dataclass
class Reply:
    """The reply so far: text, tool calls with their results, and token counts."""

    text: list[str] = field(default_factory=list)
    tool_calls: dict[str, dict[str, Any]] = field(default_factory=dict)
    input_tokens: int = 0
    output_tokens: int = 0
    version: int = 0  # moves on every change, so checkpoints skip replies that did not

    @property
    def content(self) -> str:
        """The text produced so far."""
        return "".join(self.text)

    def draft(self, run_id: uuid.UUID) -> Draft:
        """A checkpoint of the reply."""
        return Draft(run_id, self.content, list(self.tool_calls.values()))

    def usage(self, model: str) -> ev.Usage:
        """Token usage so far."""
        return ev.Usage(
            input_tokens=self.input_tokens,
            output_tokens=self.output_tokens,
            total_tokens=self.input_tokens + self.output_tokens,
            model=model,
        )


def _tool_result_text(content: Any) -> str:
    return content if isinstance(content, str) else jsonenc.dumps(content).decode()


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
        self.reply.text.append(text)
        self.reply.version += 1
        delta = ev.TextDelta(
            content=text, conversation_id=self.conversation_id if self.first_delta else None
        )
        self.first_delta = False
        return delta

    def _tool_call(self, event: FunctionToolCallEvent) -> ev.ToolCall:
        # Emitted when the call is complete, so the arguments are too.
        part = event.part
        call = ev.ToolCall(
            tool_name=part.tool_name, tool_args=part.args_as_dict(), tool_call_id=part.tool_call_id
        )
        self.reply.tool_calls[part.tool_call_id] = {
            "tool_name": call.tool_name,
            "tool_args": call.tool_args,
            "tool_call_id": call.tool_call_id,
        }
        self.reply.version += 1
        return call

    def _tool_result(self, event: FunctionToolResultEvent) -> ev.ToolResult:
        result = event.part
        content = (
            result.model_response()
            if isinstance(result, RetryPromptPart)
            else _tool_result_text(result.content)
        )
        record = self.reply.tool_calls.setdefault(
            result.tool_call_id,
            {"tool_name": result.tool_name, "tool_args": {}, "tool_call_id": result.tool_call_id},
        )
        record["tool_result_content"] = content
        self.reply.version += 1
        return ev.ToolResult(
            tool_name=result.tool_name,
            tool_call_id=result.tool_call_id,
            tool_result_content=content,
        )
