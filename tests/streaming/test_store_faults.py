"""A reply the database cannot store as it is breaks nothing else: model text with a NUL or a
lone surrogate is sent and stored with U+FFFD, and a reply whose conversation is deleted while
it streams ends normally while every other reply keeps being checkpointed (both databases)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic_ai.messages import ModelMessage
from pydantic_ai.models.function import AgentInfo, FunctionModel

from agentstream.models import MessageStatus
from agentstream.state import AppState
from tests.conversations.turns import stored, usage_rows
from tests.factories import Account, create_agent
from tests.streaming.live import LiveSSE, live_sse
from tests.streaming.scripted import Script, parse_sse

MakeAgent = Callable[..., Awaitable[str]]


class Feed:
    """A model whose tokens the test hands over one at a time (``None`` ends the reply)."""

    def __init__(self) -> None:
        self.tokens: asyncio.Queue[str | None] = asyncio.Queue()

    def model(self) -> FunctionModel:
        return FunctionModel(stream_function=self._stream, model_name="feed")

    async def _stream(self, messages: list[ModelMessage], info: AgentInfo) -> AsyncIterator[str]:
        while (token := await self.tokens.get()) is not None:
            yield token


async def eventually(check: Callable[[], Awaitable[bool]], within_s: float = 10) -> None:
    """Until ``check()`` holds (a polled state with a deadline)."""
    async with asyncio.timeout(within_s):
        while not await check():  # noqa: ASYNC110
            await asyncio.sleep(0.02)


async def next_of(live: LiveSSE, kind: str) -> dict[str, Any]:
    """The stream's next event of type ``kind`` (fails on a terminal event before it)."""
    while True:
        event = await live.next_event()
        if event["type"] == kind:
            return event
        assert event["type"] not in ("done", "error"), event


async def to_terminal(live: LiveSSE) -> list[dict[str, Any]]:
    events = [await live.next_event()]
    while events[-1]["type"] not in ("done", "error"):
        events.append(await live.next_event())
    assert await live.next_frame() is None  # nothing after the terminal event
    return events


async def test_model_text_with_a_nul_or_lone_surrogate_is_sent_and_stored_with_u_fffd(
    client: httpx.AsyncClient, owner: Account, scripted_agent: MakeAgent, state: AppState
) -> None:
    script = Script(
        tokens=["nul\x00 ", "half \ud83d emoji"],
        tool_call=("load_skill", {"skill_name": "odd\x00name"}),  # echoed by its result
    )
    slug = await scripted_agent(script)
    response = await client.post(
        f"/v1/agents/{slug}/chat/stream/advanced", json={"message": "go"}, headers=owner.headers
    )
    events, _ = parse_sse(response.text)
    assert [e["type"] for e in events if e["type"] in ("done", "error")] == ["done"]
    assert events[-1]["status"] == "complete"
    text = "".join(str(e["content"]) for e in events if e["type"] == "text_delta")
    assert text == "nul\ufffd half \ufffd emoji"
    (call,) = [e for e in events if e["type"] == "tool_call"]
    (result,) = [e for e in events if e["type"] == "tool_result"]
    assert call["tool_args"] == {"skill_name": "odd\ufffdname"}
    assert "odd\ufffdname" in str(result["tool_result_content"])
    row = await stored(state.sessions, uuid.UUID(str(events[-1]["message_id"])))
    assert (row.content, row.status) == (text, MessageStatus.complete)
    assert row.tool_calls[0]["tool_args"] == {"skill_name": "odd\ufffdname"}
    assert row.tool_calls[0]["tool_result_content"] == result["tool_result_content"]


@pytest.mark.parametrize("settings_overrides", [{"checkpoint_s": 0.05}])
async def test_deleting_a_conversation_mid_reply_ends_it_normally_and_others_keep_checkpointing(
    app: FastAPI, client: httpx.AsyncClient, owner: Account, state: AppState
) -> None:
    doomed, other = Feed(), Feed()
    for slug, feed in (("doomed", doomed), ("other", other)):
        state.models.register(f"feed:{slug}", feed.model())
        await create_agent(client, owner, slug, model=f"feed:{slug}")
    stream = "/v1/agents/{}/chat/stream/advanced"
    async with (
        live_sse(app, stream.format("doomed"), {"message": "hi"}, owner.headers) as a,
        live_sse(app, stream.format("other"), {"message": "hi"}, owner.headers) as b,
    ):
        first_a, first_b = await a.next_event(), await b.next_event()
        run_a, run_b = uuid.UUID(first_a["run_id"]), uuid.UUID(first_b["run_id"])
        doomed.tokens.put_nowait("doomed ")
        other.tokens.put_nowait("one ")
        await next_of(a, "text_delta")
        await next_of(b, "text_delta")

        async def checkpointed(run_id: uuid.UUID, content: str) -> bool:
            return (await stored(state.sessions, run_id)).content == content

        await eventually(lambda: checkpointed(run_a, "doomed "))
        deleted = await client.delete(
            f"/v1/conversations/{first_a['conversation_id']}", headers=owner.headers
        )
        assert deleted.status_code == 204
        # The doomed reply changes after its row is gone, then the other one: any checkpoint
        # that stores the other's new text also tried the doomed reply's.
        doomed.tokens.put_nowait("more")
        await next_of(a, "text_delta")
        other.tokens.put_nowait("two")
        await next_of(b, "text_delta")
        await eventually(lambda: checkpointed(run_b, "one two"))

        doomed.tokens.put_nowait(None)
        other.tokens.put_nowait(None)
        ends = (await to_terminal(a))[-1], (await to_terminal(b))[-1]
    assert [(e["type"], e["status"]) for e in ends] == [("done", "complete")] * 2
    row = await stored(state.sessions, run_b)
    assert (row.content, row.status) == ("one two", MessageStatus.complete)
    # The doomed run's tokens are billed once, without the conversation that is gone.
    (usage,) = await usage_rows(state.sessions, run_a)
    assert (usage.conversation_id, usage.status) == (None, MessageStatus.complete)
