"""The AG-UI protocol over a run: ``RunAgentInput`` in, AG-UI events out.

Encoding is pydantic-ai's ``AGUIEventStream`` fed with the run's events as native agent
events (``streaming.native``); the input is the ``ag_ui`` package's own ``RunAgentInput``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from ag_ui.core import BaseEvent, RunAgentInput, RunErrorEvent, TextInputContent, UserMessage
from pydantic_ai.ui.ag_ui import AGUIEventStream
from starlette.responses import StreamingResponse

from agentstream.chat.schemas import ChatRequest
from agentstream.runs.registry import Readable
from agentstream.streaming.native import RunError, chat_request, invalid, protocol_response


def agui_chat_request(body: RunAgentInput) -> ChatRequest:
    """The new user turn (the last message) as a chat request; ``threadId`` names the
    conversation. ``forwardedProps.on_disconnect`` may ask for ``"cancel"``, and
    ``forwardedProps.multitask`` says what happens while the conversation is busy."""
    last = body.messages[-1] if body.messages else None
    if not isinstance(last, UserMessage):
        raise invalid("messages", "The last message must be the user's new message.")
    if isinstance(last.content, str):
        text = last.content
    else:
        text = "".join(p.text for p in last.content if isinstance(p, TextInputContent))
    props = body.forwarded_props if isinstance(body.forwarded_props, dict) else {}
    return chat_request(
        text,
        client_id=body.thread_id,
        on_disconnect=props.get("on_disconnect", "continue"),
        multitask=props.get("multitask"),
    )


@dataclass
class _RunStream(AGUIEventStream[None, Any]):
    """The library's encoder, with our error code on ``RUN_ERROR`` (its own sets none)."""

    async def on_error(self, error: Exception) -> AsyncIterator[BaseEvent]:
        async for event in super().on_error(error):
            if isinstance(event, RunErrorEvent) and isinstance(error, RunError):
                event.code = error.code
            yield event


def agui_response(run: Readable, body: RunAgentInput, accept: str | None) -> StreamingResponse:
    """The run as AG-UI events: ``RUN_STARTED`` (its ``runId`` is our run's id) … ``RUN_FINISHED``
    or ``RUN_ERROR``, for the client's own ``threadId``."""
    # No ``run_input``: with one the encoder would report the client's runId, not the run's.
    stream = _RunStream(accept=accept, thread_id=body.thread_id, run_id=str(run.id))
    return protocol_response(stream, run, owner=True)
