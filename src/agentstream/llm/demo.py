"""The offline ``demo`` model: deterministic, streams word by word, and uses skill tools.

It exists so a new deployment shows the whole product (streaming, tools, memory, cancel)
with no API key. Every plain reply says it comes from the demo model.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator

from pydantic_ai.messages import (
    ModelMessage,
    ModelRequest,
    ModelResponse,
    TextPart,
    ToolCallPart,
    ToolReturnPart,
    UserPromptPart,
)
from pydantic_ai.models import Model
from pydantic_ai.models.function import AgentInfo, DeltaToolCall, DeltaToolCalls, FunctionModel

DEMO_MODEL_NAME = "demo"
_TOKENS = re.compile(r"\s*\S+")
_REMEMBER = re.compile(r"\bremember(?: that|:)?\s+(?P<fact>.+)", re.IGNORECASE | re.DOTALL)
_COUNT = re.compile(r"\bcount to (?P<n>\d{1,4})\b", re.IGNORECASE)
_STORY_WORDS = (
    "Once upon a time, in a data centre humming beside a quiet river, there lived a small "
    "streaming server. Every day it carried words from thoughtful models to curious people, "
    "one token at a time, never dropping a single one. When a user pressed stop, it stopped "
    "at once, saved what had been said, and waited patiently for the next question. "
)


def _tokens(text: str) -> list[str]:
    return _TOKENS.findall(text)


def _last_user_text(messages: list[ModelMessage]) -> str:
    for message in reversed(messages):
        if isinstance(message, ModelRequest):
            for part in reversed(message.parts):
                if isinstance(part, UserPromptPart) and isinstance(part.content, str):
                    return part.content
    return ""


def _tool_return(messages: list[ModelMessage]) -> ToolReturnPart | None:
    last = messages[-1] if messages else None
    if isinstance(last, ModelRequest):
        for part in last.parts:
            if isinstance(part, ToolReturnPart) and part.tool_name == "load_skill":
                return part
    return None


def _skill_names(info: AgentInfo) -> list[str]:
    """Skill names listed in the instructions' catalogue (``- name: description``)."""
    return re.findall(r"^- ([a-z0-9-]+): ", info.instructions or "", re.MULTILINE)


def _mentioned_skill(text: str, info: AgentInfo) -> str | None:
    if not any(tool.name == "load_skill" for tool in info.function_tools):
        return None
    lowered = text.lower()
    for name in _skill_names(info):
        if name in lowered or name.replace("-", " ") in lowered:
            return name
    return None


def _reply(messages: list[ModelMessage], info: AgentInfo) -> str | tuple[str, str]:
    """The reply text, or ``(tool_name, json_args)`` for a tool call."""
    returned = _tool_return(messages)
    if returned is not None:
        content = str(returned.content)
        first = next((line for line in content.splitlines()[2:] if line.strip()), content)
        return (
            f"I loaded the skill and here is how it works: {first.strip()} "
            "Ask me to apply it to something and I will follow its instructions. "
            "(Offline demo model.)"
        )
    text = _last_user_text(messages).strip()
    skill = _mentioned_skill(text, info)
    if skill is not None:
        return ("load_skill", json.dumps({"skill_name": skill}))
    if match := _COUNT.search(text):
        return " ".join(str(i) for i in range(1, min(int(match["n"]), 5000) + 1))
    if match := _REMEMBER.search(text):
        fact = match["fact"].strip().rstrip(".!")
        return f"Got it — I'll remember that {fact}."
    if "story" in text.lower() or "long" in text.lower():
        return (_STORY_WORDS * 6).strip()
    return (
        f"[demo model] You said: {text} — I am agentstream's offline demo model, so I only "
        "echo, count, remember facts and load skills. Configure a real model with an "
        "`openai:` model name and OPENAI_BASE_URL."
    )


def _limit(tokens: list[str], info: AgentInfo) -> list[str]:
    max_tokens = (info.model_settings or {}).get("max_tokens")
    return tokens[:max_tokens] if isinstance(max_tokens, int) and max_tokens > 0 else tokens


def build_demo_model(token_delay_ms: float) -> Model:
    """The demo model pacing its tokens ``token_delay_ms`` apart."""
    delay = max(0.0, token_delay_ms) / 1000
    calls = 0

    def _call_id() -> str:
        nonlocal calls
        calls += 1
        return f"demo-call-{calls}"

    async def respond(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        reply = _reply(messages, info)
        if isinstance(reply, tuple):
            name, args = reply
            return ModelResponse(parts=[ToolCallPart(name, args, _call_id())])
        return ModelResponse(parts=[TextPart("".join(_limit(_tokens(reply), info)))])

    async def stream(
        messages: list[ModelMessage], info: AgentInfo
    ) -> AsyncIterator[str | DeltaToolCalls]:
        reply = _reply(messages, info)
        if isinstance(reply, tuple):
            name, args = reply
            yield {0: DeltaToolCall(name=name, json_args=args, tool_call_id=_call_id())}
            return
        for index, token in enumerate(_limit(_tokens(reply), info)):
            if delay and index:
                await asyncio.sleep(delay)
            yield token

    return FunctionModel(respond, stream_function=stream, model_name=DEMO_MODEL_NAME)
