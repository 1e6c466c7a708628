"""Tracing end to end: a real server exports OTLP/HTTP (protobuf) to a local receiver.

Every transport's run is one trace: a ``chat run`` span with pydantic-ai's model and tool
spans as its children, the trace id on the run resource, and no prompt text by default;
cancelled and failed runs end their span with their status.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import httpx
import pytest
import websockets
from httpx_sse import aconnect_sse

from tests.e2e.server import ServerProcess
from tests.factories import Account, create_agent, register
from tests.fakes.openai_server import FakeOpenAI, Reply
from tests.fakes.otlp_receiver import OtlpReceiver, ReceivedSpan

pytestmark = pytest.mark.e2e

OK, ERROR = 1, 2  # OTLP status codes


@pytest.fixture(scope="module")
def receiver() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as otlp:
        yield otlp


@pytest.fixture(scope="module")
def traced(database_url: str, upstream: FakeOpenAI, receiver: OtlpReceiver) -> Iterator[str]:
    """A server exporting its traces to ``receiver`` (standard OTEL_* variables only)."""
    process = ServerProcess(
        {
            "AGENTSTREAM_DATABASE_URL": database_url,
            "AGENTSTREAM_DEMO_TOKEN_DELAY_MS": "2",
            "OPENAI_BASE_URL": upstream.base_url,
            "OPENAI_API_KEY": "test-key",
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
            "OTEL_BSP_SCHEDULE_DELAY": "50",  # export within 50 ms of a span's end
        }
    )
    process.start()
    yield process.url
    process.stop()


@pytest.fixture
async def http(traced: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=traced, timeout=30) as client:
        yield client


Drive = Callable[[httpx.AsyncClient, Account, str, str], Awaitable[None]]


async def _rest(http: httpx.AsyncClient, owner: Account, slug: str, text: str) -> None:
    response = await http.post(
        f"/v1/agents/{slug}/chat", json={"message": text}, headers=owner.headers
    )
    assert response.status_code == 200, response.text


async def _sse(path: str, http: httpx.AsyncClient, owner: Account, slug: str, text: str) -> None:
    async with aconnect_sse(
        http, "POST", f"/v1/agents/{slug}/{path}", json={"message": text}, headers=owner.headers
    ) as source:
        events = [json.loads(sse.data) async for sse in source.aiter_sse()]
    assert events[-1]["type"] == "done", events[-1]


async def _ws(http: httpx.AsyncClient, owner: Account, slug: str, text: str) -> None:
    url = str(http.base_url).replace("http://", "ws://")
    async with websockets.connect(f"{url}/v1/agents/{slug}/ws?token={owner.access_token}") as ws:
        assert json.loads(await ws.recv())["type"] == "auth_ok"
        await ws.send(json.dumps({"type": "message", "content": text}))
        while (event := json.loads(await ws.recv()))["type"] not in ("done", "error"):
            pass
    assert event["type"] == "done", event


async def _vercel(http: httpx.AsyncClient, owner: Account, slug: str, text: str) -> None:
    message = {"id": "u1", "role": "user", "parts": [{"type": "text", "text": text}]}
    body = {"id": f"chat-{uuid.uuid4().hex}", "messages": [message], "trigger": "submit-message"}
    response = await http.post(f"/v1/agents/{slug}/chat/ui", json=body, headers=owner.headers)
    assert response.status_code == 200, response.text
    assert response.text.rstrip().endswith("data: [DONE]")


async def _agui(http: httpx.AsyncClient, owner: Account, slug: str, text: str) -> None:
    body = {
        "threadId": f"thread-{uuid.uuid4().hex}",
        "runId": "client-run-1",
        "state": {},
        "messages": [{"id": "m1", "role": "user", "content": text}],
        "tools": [],
        "context": [],
        "forwardedProps": {},
    }
    response = await http.post(f"/v1/agents/{slug}/chat/ag-ui", json=body, headers=owner.headers)
    assert response.status_code == 200, response.text
    assert '"RUN_FINISHED"' in response.text


TRANSPORTS: dict[str, Drive] = {
    "rest": _rest,
    "sse": lambda *a: _sse("chat/stream", *a),
    "sse-advanced": lambda *a: _sse("chat/stream/advanced", *a),
    "websocket": _ws,
    "vercel-ui": _vercel,
    "ag-ui": _agui,
}


async def the_run(http: httpx.AsyncClient, owner: Account, slug: str) -> dict[str, Any]:
    """The one run of the agent's one conversation (its id is the assistant message's)."""
    conversations = await http.get(f"/v1/conversations?agent={slug}", headers=owner.headers)
    [conversation] = conversations.json()["items"]
    messages = await http.get(
        f"/v1/conversations/{conversation['id']}/messages", headers=owner.headers
    )
    [reply] = [m for m in messages.json()["items"] if m["role"] == "assistant"]
    run = await http.get(f"/v1/runs/{reply['id']}", headers=owner.headers)
    assert run.status_code == 200, run.text
    body: dict[str, Any] = run.json()
    return body


def run_trace(receiver: OtlpReceiver, run: dict[str, Any], spans: int) -> list[ReceivedSpan]:
    """The run's trace, once ``spans`` of it (the root included) have been received."""

    def complete(received: list[ReceivedSpan]) -> bool:
        return len([s for s in received if s.trace_id == run["trace_id"]]) >= spans

    receiver.wait_for(complete)
    return receiver.trace(run["trace_id"])


def root_of(trace: list[ReceivedSpan], run: dict[str, Any]) -> ReceivedSpan:
    [root] = [s for s in trace if s.name == "chat run"]
    assert root.parent_span_id == ""
    assert root.attributes["agentstream.run.id"] == run["id"]
    assert root.service_name == "agentstream"
    return root


@pytest.mark.parametrize("transport", list(TRANSPORTS))
async def test_every_transport_exports_one_trace_per_run(
    http: httpx.AsyncClient, receiver: OtlpReceiver, transport: str
) -> None:
    owner = await register(http)
    slug = f"traced-{transport}"
    await create_agent(http, owner, slug)
    canary = f"canary-{uuid.uuid4().hex}"
    await TRANSPORTS[transport](http, owner, slug, f"What does code-review do? {canary}")
    run = await the_run(http, owner, slug)
    assert run["status"] == "complete"
    assert len(run["trace_id"]) == 32

    trace = run_trace(receiver, run, spans=4)
    root = root_of(trace, run)
    assert root.attributes["agentstream.agent.slug"] == slug
    assert root.attributes["agentstream.model"] == "demo"
    assert root.attributes["agentstream.run.status"] == "complete"
    assert root.attributes["gen_ai.usage.output_tokens"] > 0
    assert root.status_code == OK
    children = sorted(s.name for s in trace if s.parent_span_id == root.span_id)
    assert children == ["chat demo", "chat demo", "execute_tool load_skill"]
    # No message text by default: not the prompt, nor the reply, in anything exported.
    everything = b"".join(s.raw for s in receiver.spans)
    assert canary.encode() not in everything
    assert b"skill works" not in everything


async def test_a_cancelled_run_is_traced_with_its_status(
    http: httpx.AsyncClient, receiver: OtlpReceiver, upstream: FakeOpenAI
) -> None:
    owner = await register(http)
    model = f"slow-{uuid.uuid4().hex[:8]}"
    upstream.reply(model, Reply(tokens=[f"t{i} " for i in range(200)], delay_s=0.02))
    await create_agent(http, owner, "slow", model=f"openai:{model}")
    path = "/v1/agents/slow/chat/stream/advanced"
    async with aconnect_sse(
        http, "POST", path, json={"message": "go on"}, headers=owner.headers
    ) as source:
        run_id = source.response.headers["X-Run-Id"]
        await asyncio.to_thread(upstream.wait_for_stream, model)
        cancel = await http.post(f"/v1/runs/{run_id}/cancel", headers=owner.headers)
        assert cancel.status_code == 202
        events = [json.loads(sse.data) async for sse in source.aiter_sse()]
    assert events[-1]["status"] == "cancelled"
    run = (await http.get(f"/v1/runs/{run_id}", headers=owner.headers)).json()

    trace = run_trace(receiver, run, spans=2)
    root = root_of(trace, run)
    assert root.attributes["agentstream.run.status"] == "cancelled"
    [model_span] = [s for s in trace if s.parent_span_id == root.span_id]
    assert model_span.name == f"chat {model}"


async def test_a_failed_run_is_traced_with_error_status(
    http: httpx.AsyncClient, receiver: OtlpReceiver, upstream: FakeOpenAI
) -> None:
    owner = await register(http)
    model = f"flaky-{uuid.uuid4().hex[:8]}"
    upstream.reply(model, Reply(tokens=["good ", "bad"], fail_after=1))
    await create_agent(http, owner, "flaky", model=f"openai:{model}")
    response = await http.post(
        "/v1/agents/flaky/chat", json={"message": "x"}, headers=owner.headers
    )
    assert response.json()["error"] == "model_error"
    run_id = response.json()["details"]["message_id"]
    run = (await http.get(f"/v1/runs/{run_id}", headers=owner.headers)).json()
    assert run["status"] == "failed"

    trace = run_trace(receiver, run, spans=2)
    root = root_of(trace, run)
    assert root.attributes["agentstream.run.status"] == "failed"
    assert root.attributes["agentstream.error_code"] == "model_error"
    assert root.status_code == ERROR
    assert [name for name, _ in root.events] == ["exception"]
    [model_span] = [s for s in trace if s.parent_span_id == root.span_id]
    assert (model_span.name, model_span.status_code) == (f"chat {model}", ERROR)
