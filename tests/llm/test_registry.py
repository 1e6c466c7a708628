"""Model strings to models: ``openai:`` speaks Chat Completions to any compatible server."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest
from pydantic_ai import Agent, ModelConnectionError, ModelHTTPError
from pydantic_ai.messages import PartDeltaEvent, PartStartEvent, TextPart, TextPartDelta
from pydantic_ai.models.function import FunctionModel
from pydantic_ai.models.openai import OpenAIChatModel, OpenAIResponsesModel
from pydantic_ai.models.test import TestModel
from pydantic_ai.settings import ModelSettings

from agentstream.chat.deps import ChatDeps
from agentstream.llm.registry import (
    ModelConfigError,
    ModelRegistry,
    known_providers,
    validate_model_string,
)
from agentstream.settings import Settings
from agentstream.skills.catalog import SkillCatalog
from agentstream.skills.tools import build_skill_toolset
from tests.factories import run_identity
from tests.fakes.openai_server import FakeOpenAI, Reply, ToolCall

# These tests drive real provider models against the local fake server.
pytestmark = pytest.mark.usefixtures("allow_model_requests")


def make_registry(tmp_path: Path, base_url: str | None, api_key: str | None) -> ModelRegistry:
    settings = Settings(
        data_dir=tmp_path, openai_base_url=base_url, openai_api_key=api_key, _env_file=None
    )
    return ModelRegistry(settings, SkillCatalog.load(None))


@pytest.fixture
def registry(fake_openai: FakeOpenAI, tmp_path: Path) -> ModelRegistry:
    return make_registry(tmp_path, fake_openai.base_url, "test-key")


def scripted(fake: FakeOpenAI, reply: Reply) -> str:
    """A fresh model name answered with ``reply``."""
    name = f"fake-{uuid.uuid4().hex[:8]}"
    fake.reply(name, reply)
    return name


async def stream_text(
    agent: Agent[None, str],
    prompt: str,
    settings: ModelSettings | None = None,
    into: list[str] | None = None,
) -> list[str]:
    """Stream a run; its text pieces, appended to ``into`` as they arrive."""
    deltas = [] if into is None else into
    async with agent.run_stream_events(prompt, model_settings=settings) as events:
        async for event in events:
            if isinstance(event, PartStartEvent) and isinstance(event.part, TextPart):
                deltas.append(event.part.content)
            elif isinstance(event, PartDeltaEvent) and isinstance(event.delta, TextPartDelta):
                deltas.append(event.delta.content_delta)
    return deltas


def test_openai_prefix_resolves_to_chat_completions_with_one_shared_provider(
    registry: ModelRegistry,
) -> None:
    first = registry.resolve("openai:gpt-4o-mini")
    second = registry.resolve("openai:other-model")
    assert registry.resolve("openai:gpt-4o-mini") is first
    assert isinstance(first, OpenAIChatModel)
    assert first.model_name == "gpt-4o-mini"
    assert isinstance(second, OpenAIChatModel)
    assert second.client is first.client


def test_other_known_strings(registry: ModelRegistry) -> None:
    responses = registry.resolve("openai-responses:gpt-4o-mini")
    assert isinstance(responses, OpenAIResponsesModel)
    assert responses.model_name == "gpt-4o-mini"
    demo = registry.resolve("demo")
    assert isinstance(demo, FunctionModel)
    assert demo.model_name == "demo"


def test_the_test_double_is_not_a_model_in_production(registry: ModelRegistry) -> None:
    """``test`` (pydantic-ai's TestModel) must not be something an agent can run on."""
    assert not registry.is_known("test")
    with pytest.raises(ValueError, match="provider:model"):
        validate_model_string("test")
    with pytest.raises(ModelConfigError):
        registry.resolve("test")


async def test_openai_chat_streams_text_and_reports_upstream_usage(
    registry: ModelRegistry, fake_openai: FakeOpenAI
) -> None:
    reply = Reply(tokens=["Hi", " from", " the", " fake"], prompt_tokens=17, completion_tokens=9)
    name = scripted(fake_openai, reply)
    agent = Agent(registry.resolve(f"openai:{name}"), instructions="Be brief.")
    deltas: list[str] = []
    async with agent.run_stream_events("hello") as events:
        async for event in events:
            if isinstance(event, PartStartEvent) and isinstance(event.part, TextPart):
                deltas.append(event.part.content)
            elif isinstance(event, PartDeltaEvent) and isinstance(event.delta, TextPartDelta):
                deltas.append(event.delta.content_delta)
        assert events.result is not None
        assert events.result.output == "Hi from the fake"
        usage = events.usage
    assert [d for d in deltas if d] == ["Hi", " from", " the", " fake"]
    assert (usage.input_tokens, usage.output_tokens, usage.requests) == (17, 9, 1)
    [request] = fake_openai.requests_for(name)
    assert request["stream"] is True
    assert request["stream_options"] == {"include_usage": True}
    assert request["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "hello"},
    ]
    assert fake_openai.authorizations[-1] == "Bearer test-key"
    [record] = fake_openai.streams_for(name)
    assert record.completed
    assert record.sent == 4
    assert not record.closed_early.is_set()


async def test_non_streaming_chat_reports_usage(
    registry: ModelRegistry, fake_openai: FakeOpenAI
) -> None:
    name = scripted(fake_openai, Reply(tokens=["Plain", " answer"], prompt_tokens=5))
    result = await Agent(registry.resolve(f"openai:{name}")).run("hi")
    assert result.output == "Plain answer"
    assert (result.usage.input_tokens, result.usage.output_tokens) == (5, 2)
    assert fake_openai.requests_for(name)[0]["stream"] is False


async def test_temperature_and_max_tokens_reach_the_server(
    registry: ModelRegistry, fake_openai: FakeOpenAI
) -> None:
    name = scripted(fake_openai, Reply())
    agent: Agent[None, str] = Agent(registry.resolve(f"openai:{name}"))
    await stream_text(agent, "hi", {"temperature": 0.3, "max_tokens": 77})
    [request] = fake_openai.requests_for(name)
    assert request["temperature"] == 0.3
    # pydantic-ai sends OpenAI's newer name for max_tokens.
    assert request["max_completion_tokens"] == 77


async def test_missing_api_key_still_talks_to_a_keyless_server(
    fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    registry = make_registry(tmp_path, fake_openai.base_url, None)
    name = scripted(fake_openai, Reply(tokens=["ok"]))
    assert await stream_text(Agent(registry.resolve(f"openai:{name}")), "hi") == ["ok"]
    assert fake_openai.authorizations[-1] == "Bearer not-needed"


async def test_tool_call_round_trip_through_the_chat_api(
    registry: ModelRegistry, fake_openai: FakeOpenAI
) -> None:
    call = ToolCall("load_skill", {"skill_name": "summarize"}, id="call_42")
    name = scripted(fake_openai, Reply(tokens=["Summarised."], tool_call=call))
    catalog = SkillCatalog.load(None)
    agent = Agent(
        registry.resolve(f"openai:{name}"), deps_type=ChatDeps, toolsets=[build_skill_toolset()]
    )
    deps = ChatDeps(run_identity(), catalog, catalog.names())
    result = await agent.run("summarise this", deps=deps)
    assert result.output == "Summarised."
    first, second = fake_openai.requests_for(name)
    assert {t["function"]["name"] for t in first["tools"]} == {"load_skill", "read_skill_file"}
    tool_message = second["messages"][-1]
    assert tool_message["role"] == "tool"
    assert tool_message["tool_call_id"] == "call_42"
    assert "# Skill: summarize" in tool_message["content"]


async def test_cancelling_the_run_closes_the_upstream_stream(
    registry: ModelRegistry, fake_openai: FakeOpenAI
) -> None:
    tokens = [f"t{i} " for i in range(200)]
    name = scripted(fake_openai, Reply(tokens=tokens, delay_s=0.01))
    agent = Agent(registry.resolve(f"openai:{name}"))
    first_delta = asyncio.Event()

    async def consume() -> None:
        async with agent.run_stream_events("go") as events:
            async for event in events:
                if isinstance(event, PartDeltaEvent):
                    first_delta.set()

    task = asyncio.create_task(consume())
    await first_delta.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    record = fake_openai.streams_for(name)[0]
    assert await asyncio.to_thread(record.closed_early.wait, 5)
    assert not record.completed
    assert 1 <= record.sent < len(tokens)


async def test_upstream_error_event_mid_stream_is_an_http_error_after_partial_text(
    registry: ModelRegistry, fake_openai: FakeOpenAI
) -> None:
    name = scripted(fake_openai, Reply(tokens=["a", "b", "c"], fail_after=2, fail_mode="error"))
    deltas: list[str] = []
    with pytest.raises(ModelHTTPError, match="upstream exploded") as raised:
        await stream_text(Agent(registry.resolve(f"openai:{name}")), "go", into=deltas)
    assert raised.value.status_code == 500
    assert "".join(deltas) == "ab"


async def test_upstream_connection_dropped_mid_stream_is_a_connection_error(
    registry: ModelRegistry, fake_openai: FakeOpenAI
) -> None:
    name = scripted(fake_openai, Reply(tokens=["a", "b", "c"], fail_after=2, fail_mode="abort"))
    deltas: list[str] = []
    with pytest.raises(ModelConnectionError):
        await stream_text(Agent(registry.resolve(f"openai:{name}")), "go", into=deltas)
    assert "".join(deltas) == "ab"


@pytest.mark.parametrize(
    "value",
    [
        "demo",
        "openai:gpt-4o-mini",
        "anthropic:claude-sonnet-4-5",
        " openai:x ",
        "openai-responses:gpt-5",
        "gateway/openai:gpt-5",
        "ollama:llama3.2:3b",
    ],
)
def test_validate_model_string_accepts_known_shapes(value: str) -> None:
    assert validate_model_string(value) == value.strip()


@pytest.mark.parametrize(
    "value",
    ["", "   ", "gpt-4o", "openai:", ":gpt-4o", "openai:gpt 4o", "open ai:x", "1x:y", "demo!"],
)
def test_validate_model_string_rejects_garbage(value: str) -> None:
    with pytest.raises(ValueError, match="provider:model"):
        validate_model_string(value)


def test_unknown_provider_is_a_model_config_error(
    registry: ModelRegistry,
) -> None:
    with pytest.raises(ModelConfigError, match="Cannot use model 'nope:some-model'"):
        registry.resolve("nope:some-model")


@pytest.mark.parametrize(
    "model",
    [
        "demo",
        "openai:gpt-4o-mini",
        "openai-responses:gpt-5",
        "anthropic:claude-sonnet-4-5",  # known even where its SDK is not installed
        "ollama:llama3.2:3b",
        "gateway/openai:gpt-5",
    ],
)
def test_known_providers_need_no_api_key(tmp_path: Path, model: str) -> None:
    assert make_registry(tmp_path, None, None).is_known(model)


@pytest.mark.parametrize("model", ["Xza1:6", "nope:some-model", "gateway/nope:x"])
def test_unknown_providers_are_not_known(registry: ModelRegistry, model: str) -> None:
    assert not registry.is_known(model)


def test_registered_names_are_known(registry: ModelRegistry) -> None:
    assert not registry.is_known("scripted:ab12cd34")
    registry.register("scripted:ab12cd34", TestModel())
    assert registry.is_known("scripted:ab12cd34")


def test_known_providers_come_from_pydantic_ai_and_ours() -> None:
    providers = known_providers()
    assert providers[0] == "demo"
    assert {"openai", "openai-responses", "anthropic", "google", "groq"} <= set(providers)
