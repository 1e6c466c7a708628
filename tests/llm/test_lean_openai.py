"""The lean ``openai:`` model behaves as pydantic-ai's ``OpenAIChatModel``: every recorded
stream (tests/llm/openai_streams.py) gives the same events, ``ModelResponse`` and errors."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic_ai.direct import model_request_stream
from pydantic_ai.messages import ModelRequest, ModelResponse, ModelResponseStreamEvent
from pydantic_ai.models import Model, ModelRequestParameters
from pydantic_ai.models.openai import OpenAIChatModel
from pydantic_ai.providers.openai import OpenAIProvider
from pydantic_ai.settings import ModelSettings
from pydantic_ai.tools import ToolDefinition

from agentstream.llm.lean_openai import LeanOpenAIChatModel
from agentstream.llm.registry import ModelRegistry
from agentstream.settings import Settings
from agentstream.skills.catalog import SkillCatalog
from tests.fakes.openai_server import FakeOpenAI, Recorded
from tests.llm.openai_streams import CASES, Case

pytestmark = pytest.mark.usefixtures("allow_model_requests")

_WEATHER_TOOL = ToolDefinition(
    name="get_weather",
    parameters_json_schema={
        "type": "object",
        "properties": {"location": {"type": "string"}, "unit": {"type": "string"}},
    },
)
_THEN = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass
class Outcome:
    """What a caller of ``model_request_stream`` observes."""

    events: list[ModelResponseStreamEvent]
    response: ModelResponse | None
    error: tuple[object, ...] | None


def _error(exc: BaseException) -> tuple[object, ...]:
    cause = exc.__cause__
    return (
        type(exc).__name__,
        str(exc),
        getattr(exc, "status_code", None),
        getattr(exc, "body", None),
        type(cause).__name__ if cause else None,
    )


async def _replay(model: Model, case: Case) -> Outcome:
    messages = [ModelRequest.user_text_prompt("What is the weather in Paris?")]
    parameters = ModelRequestParameters(function_tools=[_WEATHER_TOOL] if case.tools else [])
    settings = ModelSettings(**case.settings)  # type: ignore[typeddict-item]
    events: list[ModelResponseStreamEvent] = []
    try:
        async with model_request_stream(
            model, messages, model_settings=settings, model_request_parameters=parameters
        ) as stream:
            async for event in stream:
                events.append(event)
        # The response's own timestamp is the moment it was built; everything else must match.
        return Outcome(events, replace(stream.get(), timestamp=_THEN), None)
    except Exception as exc:
        return Outcome(events, None, _error(exc))


def _split(recorded: Recorded, size: int | None) -> Recorded:
    """The same bytes in pieces of ``size`` (events cut anywhere, as the network may)."""
    if size is None:
        return recorded
    whole = b"".join(recorded.pieces)
    pieces = [whole[i : i + size] for i in range(0, len(whole), size)]
    scale = len(pieces) / max(len(recorded.pieces), 1)

    def at(index: int | None) -> int | None:
        return None if index is None else int(index * scale)

    return replace(
        recorded,
        pieces=pieces,
        abort_after=at(recorded.abort_after),
        stall_after=at(recorded.stall_after),
    )


@pytest.fixture
def provider(fake_openai: FakeOpenAI) -> OpenAIProvider:
    return OpenAIProvider(base_url=fake_openai.base_url, api_key="test-key")


@pytest.mark.parametrize("size", [None, 7], ids=["per-event", "7-byte-pieces"])
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
async def test_recorded_stream_gives_what_pydantic_ai_gives(
    case: Case, size: int | None, fake_openai: FakeOpenAI, provider: OpenAIProvider
) -> None:
    name = f"rec-{uuid.uuid4().hex[:8]}"
    outcomes = []
    for model_class in (OpenAIChatModel, LeanOpenAIChatModel):
        before = len(fake_openai.requests_for(name))
        fake_openai.replay(name, _split(case.recorded, size))
        outcome = await _replay(model_class(name, provider=provider), case)
        outcomes.append((outcome, len(fake_openai.requests_for(name)) - before))
    (stock, stock_requests), (lean, lean_requests) = outcomes
    assert lean.error == stock.error
    assert lean.events == stock.events
    assert lean.response == stock.response
    assert lean_requests == stock_requests  # the same retries


def test_the_corpus_covers_the_constraints() -> None:
    """Every behaviour issue 19 names has a recorded stream, and some end in an error."""
    names = {c.name for c in CASES}
    for needed in (
        "openai_text_with_usage",
        "openai_tool_call_in_many_deltas",
        "openai_parallel_tool_calls",
        "vllm_reasoning_content",
        "ollama_reasoning",
        "openai_refusal",
        "http_401",
        "http_429_then_ok",
        "http_503_always",
        "cut_mid_stream",
        "stalled_stream_times_out",
    ):
        assert needed in names


async def test_stock_and_lean_differ_only_in_the_reader(
    fake_openai: FakeOpenAI, provider: OpenAIProvider
) -> None:
    """The lean model really reads with its own parser (the differential test compares two
    different paths, not one path twice)."""
    name = f"rec-{uuid.uuid4().hex[:8]}"
    fake_openai.replay(name, CASES[0].recorded)
    model = LeanOpenAIChatModel(name, provider=provider)
    async with model_request_stream(model, [ModelRequest.user_text_prompt("hi")]) as stream:
        assert type(stream._response.source).__name__ == "_Chunks"
        async for _ in stream:
            pass


@pytest.mark.parametrize(
    ("lean", "expected"), [(True, LeanOpenAIChatModel), (False, OpenAIChatModel)]
)
def test_lean_openai_setting_picks_the_model(
    tmp_path: Path, lean: bool, expected: type[Any]
) -> None:
    settings = Settings(
        data_dir=tmp_path, openai_base_url="http://127.0.0.1:9/v1", lean_openai=lean, _env_file=None
    )
    model = ModelRegistry(settings, SkillCatalog.load(None)).resolve("openai:gpt-4o-mini")
    assert type(model) is expected
