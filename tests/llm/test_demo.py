"""The offline demo model, driven through real pydantic-ai agent runs."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import pytest
from pydantic_ai import Agent, AgentRunResultEvent
from pydantic_ai.messages import (
    AgentStreamEvent,
    FunctionToolCallEvent,
    FunctionToolResultEvent,
    PartDeltaEvent,
    PartStartEvent,
    TextPart,
    TextPartDelta,
)
from pydantic_ai.models import Model
from pydantic_ai.settings import ModelSettings

from agentstream.chat.deps import ChatDeps
from agentstream.llm.demo import DEMO_MODEL_NAME, build_demo_model
from agentstream.skills.catalog import SkillCatalog
from agentstream.skills.tools import build_skill_toolset, skills_prompt
from tests.factories import run_identity


@pytest.fixture(scope="module")
def catalog() -> SkillCatalog:
    return SkillCatalog.load(None)


@dataclass
class Run:
    """What a client of the stream saw."""

    output: str
    deltas: list[str] = field(default_factory=list)
    events: list[AgentStreamEvent] = field(default_factory=list)

    @property
    def tool_calls(self) -> list[FunctionToolCallEvent]:
        return [e for e in self.events if isinstance(e, FunctionToolCallEvent)]


async def stream(
    prompt: str,
    *,
    model: Model | None = None,
    catalog: SkillCatalog | None = None,
    allowed: frozenset[str] | None = None,
    max_tokens: int | None = None,
) -> Run:
    """One streamed run of the demo model; with ``catalog`` the agent has the skill tools."""
    model = model or build_demo_model(0)
    toolsets = [build_skill_toolset()] if catalog is not None else []
    catalog = catalog or SkillCatalog({})
    allowed = catalog.names() if allowed is None else allowed
    agent = Agent(
        model,
        deps_type=ChatDeps,
        toolsets=toolsets,
        instructions=skills_prompt(catalog, allowed),
    )
    deps = ChatDeps(run_identity(), catalog, allowed)
    settings = ModelSettings(max_tokens=max_tokens) if max_tokens is not None else None
    run = Run(output="")
    async with agent.run_stream_events(prompt, deps=deps, model_settings=settings) as events:
        async for event in events:
            if isinstance(event, PartStartEvent) and isinstance(event.part, TextPart):
                run.deltas.append(event.part.content)
            elif isinstance(event, PartDeltaEvent) and isinstance(event.delta, TextPartDelta):
                run.deltas.append(event.delta.content_delta)
            if not isinstance(event, AgentRunResultEvent):
                run.events.append(event)
        assert events.result is not None
        run.output = events.result.output
    return run


async def test_streams_word_by_word_and_deltas_add_up_to_the_reply() -> None:
    run = await stream("hello there, how are you?")
    assert len(run.deltas) > 10
    assert "".join(run.deltas) == run.output
    assert all(delta.strip() for delta in run.deltas)
    assert run.output.startswith("[demo model] You said: hello there, how are you?")


async def test_plain_reply_says_it_is_the_demo_model_and_how_to_configure_a_real_one() -> None:
    run = await stream("hi")
    assert "offline demo model" in run.output
    assert "OPENAI_BASE_URL" in run.output
    assert "openai:" in run.output
    assert DEMO_MODEL_NAME == build_demo_model(0).model_name == "demo"


async def test_remember_that_is_acknowledged() -> None:
    run = await stream("Please remember that my cat is called Miso.")
    assert run.output == "Got it — I'll remember that my cat is called Miso."


async def test_story_or_long_request_gets_a_long_reply() -> None:
    story = await stream("tell me a story")
    long = await stream("Write something long please")
    assert len(story.output.split()) >= 300
    assert long.output == story.output
    assert "".join(story.deltas) == story.output
    assert len(story.deltas) >= 300


async def test_mentioning_a_skill_loads_it_then_answers_with_it(catalog: SkillCatalog) -> None:
    run = await stream("What does the code-review skill do?", catalog=catalog)
    [call] = run.tool_calls
    assert call.part.tool_name == "load_skill"
    assert call.part.args_as_dict() == {"skill_name": "code-review"}
    assert call.part.tool_call_id == "demo-call-1"
    [result] = [e for e in run.events if isinstance(e, FunctionToolResultEvent)]
    assert result.part.tool_call_id == "demo-call-1"
    assert "Review the code the user shares" in result.part.model_response_str()
    assert run.output.startswith(
        "Here is how the code-review skill works: Review the code the user shares"
    )
    assert "".join(run.deltas) == run.output


async def test_skill_named_with_spaces_is_recognised(catalog: SkillCatalog) -> None:
    run = await stream("Use the writing style skill on my essay", catalog=catalog)
    assert [c.part.args_as_dict() for c in run.tool_calls] == [{"skill_name": "writing-style"}]


async def test_skill_not_available_to_the_run_is_not_loaded(catalog: SkillCatalog) -> None:
    not_allowed = await stream(
        "What does the code-review skill do?", catalog=catalog, allowed=frozenset({"summarize"})
    )
    without_tools = await stream("What does the code-review skill do?")
    assert not_allowed.tool_calls == []
    assert not_allowed.output.startswith("[demo model] You said:")
    assert without_tools.tool_calls == []


async def test_max_tokens_caps_the_reply() -> None:
    run = await stream("tell me a story", max_tokens=5)
    assert len(run.deltas) == 5
    assert run.output == "Chapter 1. Once upon a"


async def test_non_streaming_run_gives_the_same_reply(catalog: SkillCatalog) -> None:
    streamed = await stream("What does the summarize skill do?", catalog=catalog)
    agent = Agent(
        build_demo_model(0),
        deps_type=ChatDeps,
        toolsets=[build_skill_toolset()],
        instructions=skills_prompt(catalog, catalog.names()),
    )
    deps = ChatDeps(run_identity(), catalog, catalog.names())
    result = await agent.run("What does the summarize skill do?", deps=deps)
    assert result.output == streamed.output
    assert result.usage.tool_calls == 1


async def test_runs_are_deterministic(catalog: SkillCatalog) -> None:
    model = build_demo_model(0)
    for prompt in ["hi", "tell me a long story", "What does the summarize skill do?"]:
        first = await stream(prompt, model=model, catalog=catalog)
        second = await stream(prompt, model=model, catalog=catalog)
        assert first.deltas == second.deltas
        assert [c.part for c in first.tool_calls] == [c.part for c in second.tool_calls]


async def test_token_delay_paces_the_stream() -> None:
    started = time.monotonic()
    run = await stream("tell me a story", model=build_demo_model(20), max_tokens=6)
    # Five pauses between six tokens (a lower bound only, so never flaky).
    assert time.monotonic() - started >= 5 * 0.020
    assert len(run.deltas) == 6


async def test_asking_for_markdown_streams_a_formatted_sample() -> None:
    run = await stream("Show me some markdown, please")
    assert run.output.startswith("Here is a **formatted** reply")
    assert "```python\n" in run.output
    assert "\n- " in run.output
    assert "\n1. " in run.output
    assert "".join(run.deltas) == run.output  # streamed word by word, newlines kept
    assert len(run.deltas) > 20
