"""Running a model response's tool calls between model requests: each call and result
streamed, a call that needs approval announced and left unrun, and a paused turn's calls
finished once decided (a continuation's start)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from pydantic_ai.exceptions import ApprovalRequired, ToolFailedError, ToolRetryError
from pydantic_ai.messages import (
    FunctionToolCallEvent,
    FunctionToolResultEvent,
    ModelRequestPart,
    ToolCallPart,
    ToolReturnPart,
)
from pydantic_ai.tool_manager import ToolManager
from pydantic_ai.tools import ToolDenied

from agentstream.approvals.resume import Decision, Resume
from agentstream.chat import events as ev
from agentstream.chat.deps import ChatDeps
from agentstream.chat.translate import Translator


async def _call_tool(
    tools: ToolManager[ChatDeps], call: ToolCallPart, *, approved: bool = False
) -> ToolReturnPart:
    """Run one tool call; a retry the tool (or its arguments) asks for goes back to the model.
    A call that needs approval (and does not have it) raises ``ApprovalRequired``."""
    try:
        result = await tools.handle_call(call, approved=approved)
    except ToolRetryError as retry:
        part = retry.tool_retry
        if isinstance(part, ToolReturnPart):
            return part
        return ToolReturnPart(call.tool_name, part.model_response(), call.tool_call_id)
    except ToolFailedError as failed:  # a tool (an MCP server) that failed: the model is told
        return failed.tool_failed
    if isinstance(result, ToolDenied):
        return ToolReturnPart(call.tool_name, result.message, call.tool_call_id, outcome="denied")
    return ToolReturnPart(call.tool_name, result, call.tool_call_id)


async def _decided(
    tools: ToolManager[ChatDeps] | None, call: ToolCallPart, decision: Decision
) -> ToolReturnPart:
    """A paused call's result once decided: the tool's when approved, a denial otherwise."""
    if not decision.approved:
        return ToolReturnPart(
            call.tool_name, decision.denial(), call.tool_call_id, outcome="denied"
        )
    if tools is None:  # the agent lost the tool while the call waited
        text = f"The tool {call.tool_name} is no longer available."
        return ToolReturnPart(call.tool_name, text, call.tool_call_id, outcome="failed")
    return await _call_tool(tools, call, approved=True)


async def resumed(
    resume: Resume, tools: ToolManager[ChatDeps] | None, translator: Translator
) -> AsyncIterator[ev.ChatEvent | ModelRequestPart]:
    """A continuation's start: the decided calls' results (streamed), then every result of the
    paused turn's calls (the parts of the model's next request)."""
    results: list[ModelRequestPart] = []
    for call in resume.response().tool_calls:
        result = resume.stored_result(call)
        if result is None:
            decision = resume.decisions.get(call.tool_call_id, Decision(False, "expired"))
            translator.decided(call)
            result = await _decided(tools, call, decision)
            if (ours := translator.translate(FunctionToolResultEvent(result))) is not None:
                yield ours
        results.append(result)
    for part in results:
        yield part


async def run_calls(
    tools: ToolManager[ChatDeps], calls: list[ToolCallPart], translator: Translator
) -> AsyncIterator[ev.ChatEvent | ModelRequestPart]:
    """Run a response's tool calls in order, streaming each call and result; a call that needs
    approval is announced (``approval_required``) and left unrun. Yields the results' parts."""
    for call in calls:
        if (ours := translator.translate(FunctionToolCallEvent(call))) is not None:
            yield ours
        try:
            result = await _call_tool(tools, call)
        except ApprovalRequired:
            yield translator.approval(call)
            continue
        if (ours := translator.translate(FunctionToolResultEvent(result))) is not None:
            yield ours
        yield result
