"""The turn writer: a checkpoint costs what changed, one reply's failure never stops the others',
and a final write made twice (a retry after a lost answer) records the run's usage once."""

from __future__ import annotations

import logging

import httpx
import pytest
from sqlalchemy import update

from agentstream.chat.translate import Reply
from agentstream.conversations.turns import finish_turn
from agentstream.db import transaction
from agentstream.models import Message, MessageStatus
from agentstream.state import AppState
from tests.conversations.turns import new_turns, outcome, stored, usage_rows


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    # The tests checkpoint by hand: the writer's own loop must not run in between.
    return {"checkpoint_s": 3600}


async def test_a_checkpoint_appends_the_new_text_and_writes_tool_calls_only_when_changed(
    client: httpx.AsyncClient, state: AppState
) -> None:
    (run,) = await new_turns(client, state, 1)
    reply = Reply()
    state.writer.track(run.run_id, reply)
    reply.text += ["Hello", " there"]
    await state.writer.checkpoint()
    assert (await stored(state.sessions, run.run_id)).content == "Hello there"
    # Mark the stored row: a checkpoint that rewrote the whole text or the tool calls would
    # erase the marks.
    async with transaction(state.sessions) as session:
        connection = await session.connection()
        await connection.execute(
            update(Message)
            .where(Message.id == run.run_id)
            .values(content=Message.content + "|", tool_calls=[{"mark": 1}])
        )
    reply.text.append("!")
    await state.writer.checkpoint()
    row = await stored(state.sessions, run.run_id)
    assert (row.content, row.tool_calls) == ("Hello there|!", [{"mark": 1}])

    call = {"tool_name": "load_skill", "tool_args": {"skill_name": "x"}, "tool_call_id": "c1"}
    reply.tool_calls["c1"] = call
    reply.tools_version += 1
    await state.writer.checkpoint()
    row = await stored(state.sessions, run.run_id)
    assert (row.content, row.tool_calls) == ("Hello there|!", [call])

    await state.writer.finish(run, outcome("Hello there!"))  # the final write: the whole reply
    row = await stored(state.sessions, run.run_id)
    assert (row.content, row.status) == ("Hello there!", MessageStatus.complete)


async def test_a_reply_that_cannot_be_checkpointed_is_logged_once_and_never_stops_the_others(
    client: httpx.AsyncClient, state: AppState, caplog: pytest.LogCaptureFixture
) -> None:
    bad_run, good_run = await new_turns(client, state, 2)
    bad, good = Reply(), Reply()
    state.writer.track(bad_run.run_id, bad)
    state.writer.track(good_run.run_id, good)
    # No database takes a lone surrogate (the translator makes model text storable; this
    # reply skips it, as a bug or any other per-run error would).
    bad.text.append("unstorable \ud800")
    good.text.append("first")
    with caplog.at_level(logging.ERROR, logger="agentstream.writer"):
        await state.writer.checkpoint()
        assert (await stored(state.sessions, good_run.run_id)).content == "first"
        for word in (" second", " third"):
            bad.text.append(word)
            good.text.append(word)
            await state.writer.checkpoint()
    assert (await stored(state.sessions, good_run.run_id)).content == "first second third"
    failures = [r for r in caplog.records if "cannot be checkpointed" in r.getMessage()]
    assert len(failures) == 1
    assert failures[0].message_id == str(bad_run.run_id)  # type: ignore[attr-defined]
    # The bad reply's final write is still made (here with storable text), and the good one's.
    assert await state.writer.finish(bad_run, outcome("unstorable \ufffd second third"))
    assert await state.writer.finish(good_run, outcome("first second third"))
    row = await stored(state.sessions, bad_run.run_id)
    assert (row.content, row.status) == ("unstorable \ufffd second third", MessageStatus.complete)


async def test_a_final_write_made_twice_records_the_runs_usage_once(
    client: httpx.AsyncClient, state: AppState
) -> None:
    (run,) = await new_turns(client, state, 1)
    for _ in range(2):  # a retry of a write whose commit went through but whose answer was lost
        async with transaction(state.sessions) as session:
            await finish_turn(session, run, outcome("done"))
    rows = await usage_rows(state.sessions, run.run_id)
    assert [(r.run_id, r.conversation_id, r.output_tokens) for r in rows] == [
        (run.run_id, run.conversation_id, 2)
    ]
