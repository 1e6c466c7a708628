"""Helpers for writer and journal tests: real turn rows, and what the database holds."""

from __future__ import annotations

import uuid

import httpx
from sqlalchemy import select

from agentstream.conversations.turns import RunIdentity, TurnOutcome, start_turn
from agentstream.db import SessionMaker, transaction
from agentstream.models import Agent, Message, MessageStatus, UsageLog
from agentstream.state import AppState
from tests.factories import create_agent, register


async def new_turns(client: httpx.AsyncClient, state: AppState, count: int) -> list[RunIdentity]:
    """``count`` turns (user message, empty assistant placeholder, running run) of a new user."""
    owner = await register(client)
    await create_agent(client, owner, "bot")
    identities = []
    for n in range(count):
        async with transaction(state.sessions) as session:
            agent = await session.scalar(select(Agent).where(Agent.team_id == owner.team_id))
            assert agent is not None
            identity, _ = await start_turn(session, owner, agent, f"turn {n}", None, "elsewhere")
        identities.append(identity)
    return identities


def outcome(content: str, status: MessageStatus = MessageStatus.complete) -> TurnOutcome:
    """A reply's final state."""
    return TurnOutcome(
        content=content,
        status=status,
        tool_calls=[],
        usage={"input_tokens": 3, "output_tokens": 2, "total_tokens": 5, "model": "demo"},
        input_tokens=3,
        output_tokens=2,
        duration_ms=7,
        last_seq=5,
    )


async def stored(sessions: SessionMaker, run_id: uuid.UUID) -> Message:
    """The assistant message as the database holds it now."""
    async with sessions() as session:
        row = await session.scalar(select(Message).where(Message.id == run_id))
    assert row is not None, f"no message {run_id}"
    return row


async def usage_rows(sessions: SessionMaker, run_id: uuid.UUID) -> list[UsageLog]:
    """The usage rows recorded for a run."""
    async with sessions() as session:
        return list(
            (await session.scalars(select(UsageLog).where(UsageLog.run_id == run_id))).all()
        )
