"""Rebuild pydantic-ai message history from stored messages, so conversations continue."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic_ai.messages import (
    ModelMessage,
    ModelRequest,
    ModelResponse,
    TextPart,
    ToolCallPart,
    ToolReturnPart,
    UserPromptPart,
)

from agentstream.models import Message, MessageRole


def _assistant_turn(message: Message) -> list[ModelMessage]:
    turn: list[ModelMessage] = []
    calls = [c for c in message.tool_calls if c.get("tool_result_content") is not None]
    if calls:
        turn.append(
            ModelResponse(
                parts=[
                    ToolCallPart(c["tool_name"], c.get("tool_args") or {}, c["tool_call_id"])
                    for c in calls
                ],
                model_name=message.model,
            )
        )
        turn.append(
            ModelRequest(
                parts=[
                    ToolReturnPart(c["tool_name"], c["tool_result_content"], c["tool_call_id"])
                    for c in calls
                ]
            )
        )
    if message.content:
        turn.append(ModelResponse(parts=[TextPart(message.content)], model_name=message.model))
    return turn


def rebuild_history(messages: Sequence[Message]) -> list[ModelMessage]:
    """Alternate user requests and assistant responses; empty turns are skipped."""
    history: list[ModelMessage] = []
    for message in messages:
        if message.role is MessageRole.user:
            history.append(ModelRequest(parts=[UserPromptPart(message.content)]))
        else:
            history.extend(_assistant_turn(message))
    return history
