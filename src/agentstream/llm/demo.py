"""The offline ``demo`` model: deterministic, streams word by word, and uses skill tools.

It exists so a new deployment shows the whole product (streaming, tools, memory, cancel)
with no API key. Every plain reply says it comes from the demo model.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Callable

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
LOAD_SKILL = "load_skill"
_TOKENS = re.compile(r"\s*\S+")
_CATALOGUE_ENTRY = re.compile(r"^- ([a-z0-9-]+): ", re.MULTILINE)
_REMEMBER = re.compile(r"\bremember(?: that|:)\s*(?P<fact>\S.*)", re.IGNORECASE | re.DOTALL)
_LONG = re.compile(r"\b(?:stor(?:y|ies)|long)", re.IGNORECASE)
_MARKDOWN = re.compile(r"\b(?:markdown|formatt?(?:ed|ing))\b", re.IGNORECASE)
_ECHO_WORDS = 60
_STORY = (
    "Once upon a time, in a data centre humming beside a quiet river, there lived a small "
    "streaming server.",
    "Every day it carried words from thoughtful models to curious people, one token at a "
    "time, and it never dropped a single one.",
    "When a user pressed stop, it stopped at once, saved what had been said so far, and "
    "waited patiently for the next question.",
    "When a client vanished mid-sentence, it finished the answer anyway and kept it safe, "
    "so nothing was lost when the client came back.",
    "Its friends were the database, which remembered every message, and the rate limiter, "
    "which kept the crowds polite.",
    "At night, when the traffic slowed, it counted its tokens and dreamed of faster disks.",
)

# What a formatted reply looks like: real models answer in Markdown, and the chat page and
# `agentstream chat` render it.
_MARKDOWN_SAMPLE = """Here is a **formatted** reply from the *offline demo model*.

## What it shows

- **Bold**, *emphasis* and `inline code`
- A [link to pydantic-ai](https://ai.pydantic.dev/), opened in a new tab
- Lists, quotes and code blocks:

1. Ask a real model (set `OPENAI_BASE_URL`)
2. Watch its Markdown render as it streams

```python
def greet(name: str) -> str:
    return f"Hello, {name}!"
```

> Model output is sanitised: HTML in a reply is shown as text, never run."""

SkillNames = Callable[[], frozenset[str]]


def _tokens(text: str) -> list[str]:
    """Words with their leading whitespace, so the pieces concatenate back to ``text``."""
    return _TOKENS.findall(text)


def _last_user_text(messages: list[ModelMessage]) -> str:
    for message in reversed(messages):
        if isinstance(message, ModelRequest):
            for part in reversed(message.parts):
                if isinstance(part, UserPromptPart) and isinstance(part.content, str):
                    return part.content
    return ""


def _skill_return(messages: list[ModelMessage]) -> tuple[str, str] | None:
    """``(skill_name, tool output)`` when the last request answers a ``load_skill`` call."""
    last = messages[-1] if messages else None
    if not isinstance(last, ModelRequest):
        return None
    for part in last.parts:
        if isinstance(part, ToolReturnPart) and part.tool_name == LOAD_SKILL:
            return _called_skill(messages, part.tool_call_id), part.model_response_str()
    return None


def _called_skill(messages: list[ModelMessage], tool_call_id: str) -> str:
    for message in reversed(messages):
        if isinstance(message, ModelResponse):
            for part in message.parts:
                if isinstance(part, ToolCallPart) and part.tool_call_id == tool_call_id:
                    return str(part.args_as_dict().get("skill_name", ""))
    return ""


def _mentioned_skill(text: str, info: AgentInfo, skill_names: SkillNames | None) -> str | None:
    """A skill of this run's catalogue that the user names, when ``load_skill`` is offered."""
    if not any(tool.name == LOAD_SKILL for tool in info.function_tools):
        return None
    # The instructions' catalogue lists exactly the skills this agent may use.
    names: list[str] = _CATALOGUE_ENTRY.findall(info.instructions or "")
    if skill_names is not None:
        known = skill_names()
        names = [n for n in names if n in known]
    lowered = text.lower()
    for name in sorted(names, key=len, reverse=True):
        if name in lowered or name.replace("-", " ") in lowered:
            return name
    return None


def _skill_answer(name: str, content: str) -> str:
    if not content.startswith(f"# Skill: {name}"):
        return f"[demo model] I could not load that skill: {content}"
    lines = [line.strip() for line in content.splitlines()[1:] if line.strip()]
    gist = " ".join(line for line in lines if not line.startswith("#"))
    words = gist.split()
    summary = " ".join(words[:40]) + ("…" if len(words) > 40 else "")
    return (
        f"Here is how the {name} skill works: {summary} "
        "Ask me to apply it and I will follow its instructions. (Offline demo model.)"
    )


def _story() -> str:
    chapters = []
    for number in range(1, 5):
        sentences = _STORY[number - 1 :] + _STORY[: number - 1]
        chapters.append(f"Chapter {number}. " + " ".join(sentences))
    return "\n\n".join(chapters)


def story_tokens() -> list[str]:
    """The tokens of the long story, as the demo model streams them (the bench upstream
    streams the same reply)."""
    return _tokens(_story())


def _echo(text: str) -> str:
    words = text.split()
    said = " ".join(words[:_ECHO_WORDS]) + (" …" if len(words) > _ECHO_WORDS else "")
    return (
        f"[demo model] You said: {said}\n\n"
        "I am agentstream's offline demo model: I echo messages, remember facts, tell a "
        "long story, show a formatted reply (ask for markdown) and load skills. To use a "
        "real model, set OPENAI_BASE_URL (and "
        "OPENAI_API_KEY) and give the agent an `openai:<model>` model, e.g. "
        "`openai:gpt-4o-mini`."
    )


def _reply(
    messages: list[ModelMessage], info: AgentInfo, skill_names: SkillNames | None
) -> str | DeltaToolCall:
    """The reply text, or the tool call to make."""
    returned = _skill_return(messages)
    if returned is not None:
        return _skill_answer(*returned)
    text = _last_user_text(messages).strip()
    skill = _mentioned_skill(text, info, skill_names)
    if skill is not None:
        # Ids are derived from the history so two identical runs are identical.
        turn = sum(isinstance(m, ModelResponse) for m in messages) + 1
        return DeltaToolCall(
            name=LOAD_SKILL,
            json_args=json.dumps({"skill_name": skill}),
            tool_call_id=f"demo-call-{turn}",
        )
    if match := _REMEMBER.search(text):
        fact = match["fact"].strip().rstrip(".!")
        return f"Got it — I'll remember that {fact}."
    if _LONG.search(text):
        return _story()
    if _MARKDOWN.search(text):
        return _MARKDOWN_SAMPLE
    return _echo(text)


def _limit(tokens: list[str], info: AgentInfo) -> list[str]:
    max_tokens = (info.model_settings or {}).get("max_tokens")
    return tokens[:max_tokens] if isinstance(max_tokens, int) and max_tokens > 0 else tokens


def build_demo_model(token_delay_ms: float, skill_names: SkillNames | None = None) -> Model:
    """The demo model, pacing its tokens ``token_delay_ms`` apart.

    ``skill_names`` (e.g. ``catalog.names``) restricts which catalogue entries of the
    instructions count as skills it may load.
    """
    delay = max(0.0, token_delay_ms) / 1000

    async def respond(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        reply = _reply(messages, info, skill_names)
        if isinstance(reply, DeltaToolCall):
            call = ToolCallPart(LOAD_SKILL, reply.json_args, reply.tool_call_id or "")
            return ModelResponse(parts=[call])
        return ModelResponse(parts=[TextPart("".join(_limit(_tokens(reply), info)))])

    async def stream(
        messages: list[ModelMessage], info: AgentInfo
    ) -> AsyncIterator[str | DeltaToolCalls]:
        reply = _reply(messages, info, skill_names)
        if isinstance(reply, DeltaToolCall):
            yield {0: reply}
            return
        for index, token in enumerate(_limit(_tokens(reply), info)):
            if delay and index:
                await asyncio.sleep(delay)
            yield token

    return FunctionModel(respond, stream_function=stream, model_name=DEMO_MODEL_NAME)
