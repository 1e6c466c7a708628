"""Busy conversations across ``serve --workers 2`` (PostgreSQL + Redis): one run at a time per
conversation whichever worker takes each message, and interrupt / enqueue across workers."""

from __future__ import annotations

import asyncio
import itertools
import json
import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import httpx
import pytest
from httpx_sse import aconnect_sse

from tests.e2e.server import ServerProcess
from tests.e2e.workers import pinned_clients, two_workers
from tests.factories import Account, create_agent, register
from tests.fakes.openai_server import FakeOpenAI, Reply

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.timeout(300),  # two worker processes start once for the module (slow if busy)
    pytest.mark.parametrize("database_url", ["postgres"], indirect=True),  # workers need it
]
PAIRS = 50
CONCURRENT_PAIRS = 10


@pytest.fixture(scope="module")
def workers(database_url: str, redis_url: str, upstream: FakeOpenAI) -> Iterator[ServerProcess]:
    with two_workers(
        database_url, redis_url, upstream, AGENTSTREAM_MEMORY_EXTRACTION="false"
    ) as process:
        yield process


async def chat_rest(client: httpx.AsyncClient, owner: Account, body: dict[str, Any]) -> Any:
    response = await client.post("/v1/agents/busy/chat", json=body, headers=owner.headers)
    return response.status_code, response.json()


async def chat_sse(client: httpx.AsyncClient, owner: Account, body: dict[str, Any]) -> Any:
    path = "/v1/agents/busy/chat/stream"
    async with aconnect_sse(client, "POST", path, json=body, headers=owner.headers) as source:
        if source.response.status_code != 200:
            return source.response.status_code, json.loads(await source.response.aread())
        events = [json.loads(sse.data) async for sse in source.aiter_sse()]
    return 200, {"message_id": events[-1]["message_id"], "status": events[-1].get("status")}


async def one_pair(url: str, owner: Account) -> tuple[str, list[Any]]:
    """A conversation with one finished turn, then two messages to it at the same moment, one
    on each worker (REST on one, SSE on the other)."""
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        status, first = await chat_rest(client, owner, {"message": "start"})
    assert status == 200, first
    conversation = first["conversation_id"]
    body = {"message": "at once", "conversation_id": conversation}
    async with pinned_clients(url, request_timeout_s=60) as (one, other):
        answers = await asyncio.gather(chat_rest(one, owner, body), chat_sse(other, owner, body))
    return conversation, [first["message_id"], *answers]


async def test_simultaneous_messages_on_two_workers_never_run_a_conversation_twice(
    workers: ServerProcess, upstream: FakeOpenAI
) -> None:
    model = f"busy-{uuid.uuid4().hex[:8]}"
    upstream.reply(model, Reply(tokens=[f"t{i} " for i in range(8)], delay_s=0.02))
    async with httpx.AsyncClient(base_url=workers.url, timeout=60) as client:
        owner = await register(client)
        await create_agent(client, owner, "busy", model=f"openai:{model}")
        outcomes: list[tuple[str, list[Any]]] = []
        for _ in range(PAIRS // CONCURRENT_PAIRS):
            outcomes += await asyncio.gather(
                *(one_pair(workers.url, owner) for _ in range(CONCURRENT_PAIRS))
            )
        assert len(outcomes) == PAIRS
        await check_invariant(client, owner, outcomes)


async def check_invariant(
    client: httpx.AsyncClient, owner: Account, outcomes: list[tuple[str, list[Any]]]
) -> None:
    """Every message got a run or 409 ``conversation_busy`` naming the other's run, and the
    runs of each conversation never overlapped in time."""
    refused = 0
    for conversation, (first_run, *answers) in outcomes:
        runs = [first_run]
        for status, body in answers:
            if status == 409:
                refused += 1
                assert body["error"] == "conversation_busy"
                assert body["details"]["run_id"] not in (None, first_run)
            else:
                assert status == 200, body
                runs.append(body["message_id"])
        spans = []
        for run_id in runs:
            run = (await client.get(f"/v1/runs/{run_id}", headers=owner.headers)).json()
            assert run["conversation_id"] == conversation
            assert run["status"] == "complete"
            spans.append((datetime.fromisoformat(run["created_at"]), run["finished_at"]))
        spans.sort()
        for (_, finished), (started, _) in itertools.pairwise(spans):
            assert datetime.fromisoformat(finished) <= started, (conversation, spans)
        for status, body in answers:
            if status == 409:
                assert body["details"]["run_id"] in runs  # the run it lost to is one of these
    assert refused > 0, "no pair overlapped: the test did not test the rule"


async def long_agent(client: httpx.AsyncClient, upstream: FakeOpenAI) -> tuple[Account, str]:
    model = f"busy-{uuid.uuid4().hex[:8]}"
    upstream.reply(model, Reply(tokens=[f"t{i} " for i in range(150)], delay_s=0.02))
    owner = await register(client)
    await create_agent(client, owner, "busy", model=f"openai:{model}")
    return owner, model


async def test_enqueue_waits_for_a_run_on_the_other_worker(
    workers: ServerProcess, upstream: FakeOpenAI
) -> None:
    async with pinned_clients(workers.url, request_timeout_s=60) as (one, other):
        owner, model = await long_agent(one, upstream)
        path = "/v1/agents/busy/chat/stream"
        async with aconnect_sse(
            one, "POST", path, json={"message": "long"}, headers=owner.headers
        ) as running:
            first_run = running.response.headers["X-Run-Id"]
            conversation = running.response.headers["X-Conversation-Id"]
            body = {"message": "wait", "conversation_id": conversation, "multitask": "enqueue"}
            async with aconnect_sse(
                other, "POST", path, json=body, headers=owner.headers
            ) as waiting:
                frames = waiting.aiter_sse()
                queued = json.loads((await anext(frames)).data)
                assert (queued["type"], queued["run_id"]) == ("queued", first_run)
                first = [json.loads(sse.data) async for sse in running.aiter_sse()]
                # Woken by the run's end through Redis, not by the periodic look (every 10 s
                # here): the model is asked within a few seconds.
                started = await asyncio.to_thread(upstream.wait_for_stream, model, 1, 8)
                second = [json.loads(sse.data) async for sse in frames]
    assert first[-1]["status"] == second[-1]["status"] == "complete"
    assert started.request["messages"][-1]["content"] == "wait"


async def test_interrupt_cancels_a_run_on_the_other_worker(
    workers: ServerProcess, upstream: FakeOpenAI
) -> None:
    async with pinned_clients(workers.url, request_timeout_s=60) as (one, other):
        owner, model = await long_agent(one, upstream)
        async with aconnect_sse(
            one,
            "POST",
            "/v1/agents/busy/chat/stream",
            json={"message": "long"},
            headers=owner.headers,
        ) as running:
            first_run = running.response.headers["X-Run-Id"]
            conversation = running.response.headers["X-Conversation-Id"]
            cut = {"message": "instead", "conversation_id": conversation, "multitask": "interrupt"}
            status, answer = await chat_rest(other, owner, cut)
            first = [json.loads(sse.data) async for sse in running.aiter_sse()]
        stored = (await other.get(f"/v1/runs/{first_run}", headers=owner.headers)).json()
    assert first[-1]["status"] == "cancelled"
    assert (status, answer["status"]) == (200, "complete")
    assert stored["status"] == "cancelled"
    assert upstream.streams_for(model)[0].closed_early.is_set()  # the model call really stopped
