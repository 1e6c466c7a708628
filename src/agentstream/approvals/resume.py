"""What a continuation run needs of the paused turn it carries on."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic_ai.messages import ModelResponse, TextPart, ToolCallPart, ToolReturnPart

DENIED = "The user denied this call: {reason}"


@dataclass(frozen=True)
class Decision:
    """How the owner decided one call."""

    approved: bool
    reason: str | None = None

    def denial(self) -> str:
        """What the model is told of a denied call."""
        return DENIED.format(reason=self.reason or "no reason given")


@dataclass(frozen=True)
class Resume:
    """A paused turn: its text and tool calls as stored, and the decisions on those that
    waited (by ``tool_call_id``)."""

    text: str
    calls: list[dict[str, Any]]
    decisions: dict[str, Decision]

    def response(self) -> ModelResponse:
        """The paused turn as the model answered it: its text and every call it made."""
        parts: list[TextPart | ToolCallPart] = [TextPart(self.text)] if self.text else []
        parts.extend(
            ToolCallPart(c["tool_name"], c.get("tool_args") or {}, c["tool_call_id"])
            for c in self.calls
        )
        return ModelResponse(parts=parts)

    def stored_result(self, call: ToolCallPart) -> ToolReturnPart | None:
        """The result the paused run already had for ``call`` (a call that did not wait)."""
        for stored in self.calls:
            if stored["tool_call_id"] == call.tool_call_id:
                content = stored.get("tool_result_content")
                if content is not None:
                    return ToolReturnPart(call.tool_name, content, call.tool_call_id)
        return None
