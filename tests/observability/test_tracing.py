"""Tracing in process: one ``chat run`` span per run with pydantic-ai's model and tool spans as
its children, read from an in-memory span exporter (end to end over OTLP: tests/e2e)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from agentstream.app import build_state
from agentstream.observability.tracing import Tracing
from agentstream.settings import Settings
from agentstream.state import AppState
from tests.conftest import _truncate
from tests.factories import Account
from tests.streaming.scripted import Script
from tests.streaming.wsclient import receive_until_terminal, ws_connect

MakeAgent = Callable[..., Any]
PROMPT = "my secret plan is tangerine-7"


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def trace_content() -> bool:
    return False


@pytest.fixture
async def state(
    settings: Settings, exporter: InMemorySpanExporter, trace_content: bool
) -> AsyncIterator[AppState]:
    """The app state with tracing on, into ``exporter`` (spans exported as they end)."""
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing = Tracing(provider, content=trace_content)
    async with build_state(settings, tracing=tracing) as app_state:
        try:
            yield app_state
        finally:
            await app_state.extractor.drain()
            await _truncate(app_state)


async def finished(state: AppState, run_id: str) -> None:
    """Until the run's task is over (its span ends there)."""
    run = state.runs.get(uuid.UUID(run_id))
    assert run is not None
    await asyncio.wait_for(asyncio.shield(run.task), 10)


def run_span(exporter: InMemorySpanExporter, run_id: str) -> ReadableSpan:
    [span] = [
        s
        for s in exporter.get_finished_spans()
        if s.name == "chat run" and (s.attributes or {}).get("agentstream.run.id") == run_id
    ]
    return span


def children(exporter: InMemorySpanExporter, parent: ReadableSpan) -> list[ReadableSpan]:
    return [
        s
        for s in exporter.get_finished_spans()
        if s.parent is not None and s.parent.span_id == parent.context.span_id
    ]


def every_text(spans: tuple[ReadableSpan, ...] | list[ReadableSpan]) -> str:
    """Everything a backend would receive about ``spans``: names, attributes, events."""
    parts: list[str] = []
    for span in spans:
        parts.append(span.name)
        parts.append(json.dumps(dict(span.attributes or {}), default=str))
        for event in span.events:
            parts.append(event.name + json.dumps(dict(event.attributes or {}), default=str))
    return "\n".join(parts)


async def chat(client: httpx.AsyncClient, owner: Account, slug: str, message: str) -> Any:
    response = await client.post(
        f"/v1/agents/{slug}/chat", json={"message": message}, headers=owner.headers
    )
    assert response.status_code == 200, response.text
    return response.json()


async def test_a_run_is_one_trace_with_model_and_tool_spans_as_children(
    client: httpx.AsyncClient,
    owner: Account,
    scripted_agent: MakeAgent,
    state: AppState,
    exporter: InMemorySpanExporter,
) -> None:
    script = Script(tokens=["Done", "."], tool_call=("load_skill", {"skill_name": "summarize"}))
    slug = await scripted_agent(script)
    body = await chat(client, owner, slug, PROMPT)
    run_id = body["message_id"]
    await finished(state, run_id)

    root = run_span(exporter, run_id)
    assert root.parent is None  # a trace of its own
    attributes = dict(root.attributes or {})
    assert attributes["agentstream.agent.slug"] == slug
    assert attributes["agentstream.conversation.id"] == body["conversation_id"]
    assert str(attributes["agentstream.model"]).startswith("scripted:")
    assert attributes["agentstream.run.status"] == "complete"
    assert attributes["gen_ai.usage.input_tokens"] == body["usage"]["input_tokens"] > 0
    assert attributes["gen_ai.usage.output_tokens"] == body["usage"]["output_tokens"] > 0
    assert root.status.status_code is StatusCode.OK

    kids = children(exporter, root)
    names = sorted(s.name for s in kids)
    assert names == ["chat scripted", "chat scripted", "execute_tool load_skill"]
    trace_ids = {s.context.trace_id for s in [root, *kids]}
    assert trace_ids == {root.context.trace_id}

    run = (await client.get(f"/v1/runs/{run_id}", headers=owner.headers)).json()
    assert run["trace_id"] == format(root.context.trace_id, "032x")


async def test_no_message_text_in_any_span_by_default(
    client: httpx.AsyncClient,
    owner: Account,
    scripted_agent: MakeAgent,
    state: AppState,
    exporter: InMemorySpanExporter,
) -> None:
    script = Script(
        tokens=["the reply ", "says mango-42"],
        tool_call=("load_skill", {"skill_name": "summarize"}),
    )
    slug = await scripted_agent(script, instructions="Be brief, agent-instructions-9.")
    run_id = (await chat(client, owner, slug, PROMPT))["message_id"]
    await finished(state, run_id)
    spans = exporter.get_finished_spans()
    assert len(spans) >= 4
    text = every_text(spans)
    for secret in ("tangerine-7", "mango-42", "agent-instructions-9", "summarize"):
        assert secret not in text


@pytest.mark.parametrize("trace_content", [True])
async def test_message_text_is_traced_when_asked_for(
    client: httpx.AsyncClient,
    owner: Account,
    scripted_agent: MakeAgent,
    state: AppState,
    exporter: InMemorySpanExporter,
) -> None:
    slug = await scripted_agent(Script(tokens=["the reply ", "says mango-42"]))
    run_id = (await chat(client, owner, slug, PROMPT))["message_id"]
    await finished(state, run_id)
    [model] = children(exporter, run_span(exporter, run_id))
    attributes = dict(model.attributes or {})
    assert "tangerine-7" in str(attributes["gen_ai.input.messages"])
    assert "mango-42" in str(attributes["gen_ai.output.messages"])


async def test_a_failed_run_sets_error_status_and_keeps_the_exception(
    client: httpx.AsyncClient,
    owner: Account,
    scripted_agent: MakeAgent,
    state: AppState,
    exporter: InMemorySpanExporter,
) -> None:
    slug = await scripted_agent(Script(tokens=["a", "b", "c"], fail_after=1))
    response = await client.post(
        f"/v1/agents/{slug}/chat", json={"message": "hi"}, headers=owner.headers
    )
    assert response.json()["error"] == "model_error"
    run_id = response.json()["details"]["message_id"]
    await finished(state, run_id)
    root = run_span(exporter, run_id)
    attributes = dict(root.attributes or {})
    assert attributes["agentstream.run.status"] == "failed"
    assert attributes["agentstream.error_code"] == "model_error"
    assert attributes["error.type"] == "RuntimeError"
    assert root.status.status_code is StatusCode.ERROR
    assert [e.name for e in root.events] == ["exception"]
    [model] = children(exporter, root)
    assert model.status.status_code is StatusCode.ERROR


async def test_a_cancelled_run_ends_its_span_with_status_cancelled(
    app: FastAPI,
    owner: Account,
    scripted_agent: MakeAgent,
    state: AppState,
    exporter: InMemorySpanExporter,
) -> None:
    script = Script(tokens=["one ", "two ", "three"], hold_after=2)
    slug = await scripted_agent(script)
    async with ws_connect(app, f"/v1/agents/{slug}/ws?token={owner.access_token}") as ws:
        assert (await ws.receive_json())["type"] == "auth_ok"
        await ws.send_json({"type": "message", "content": "hi"})
        await asyncio.wait_for(script.started.wait(), 10)
        await ws.send_json({"type": "cancel"})
        events = await receive_until_terminal(ws)
    assert events[-1]["status"] == "cancelled"
    run_id = events[-1]["message_id"]
    await finished(state, run_id)
    root = run_span(exporter, run_id)
    assert dict(root.attributes or {})["agentstream.run.status"] == "cancelled"
    assert root.status.status_code is StatusCode.OK
    [model] = children(exporter, root)
    assert model.end_time is not None  # the model request's span ended with the cancel


async def test_a_refused_request_ends_its_span_with_the_error_code(
    client: httpx.AsyncClient,
    owner: Account,
    scripted_agent: MakeAgent,
    exporter: InMemorySpanExporter,
) -> None:
    slug = await scripted_agent(Script())
    unknown = {"message": "hi", "conversation_id": str(uuid.uuid4())}
    response = await client.post(f"/v1/agents/{slug}/chat", json=unknown, headers=owner.headers)
    assert response.status_code == 404
    [span] = exporter.get_finished_spans()
    assert span.name == "chat run"
    assert span.status.status_code is StatusCode.ERROR
    assert dict(span.attributes or {})["error.type"] == "conversation_not_found"


def test_tracing_is_on_only_with_an_otlp_endpoint() -> None:
    def endpoint(**env: str) -> str | None:
        return Settings(_env_file=None, **env).otlp_traces_endpoint  # type: ignore[call-arg]

    assert endpoint() is None
    base = "http://collector:4318/"
    assert endpoint(OTEL_EXPORTER_OTLP_ENDPOINT=base) == "http://collector:4318/v1/traces"
    exact = "http://collector:4318/custom/traces"
    assert endpoint(OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=exact, OTEL_EXPORTER_OTLP_ENDPOINT=base) == (
        exact
    )
    assert endpoint(OTEL_EXPORTER_OTLP_ENDPOINT=base, OTEL_SDK_DISABLED="true") is None
    off = Tracing.from_settings(Settings(_env_file=None))  # type: ignore[call-arg]
    assert (off.enabled, off.instrumentation, off.tool_spans) == (False, None, None)
    assert off.start_run("bot") is None
