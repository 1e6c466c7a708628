"""Usage: one row per run and team totals by agent and model over a date range."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import select

from agentstream.models import UsageLog
from agentstream.state import AppState
from tests.factories import create_agent, register


async def test_each_run_is_logged_and_totalled(client: httpx.AsyncClient, state: AppState) -> None:
    owner = await register(client)
    await create_agent(client, owner, "one")
    await create_agent(client, owner, "two")
    replies = []
    for slug in ("one", "one", "two"):
        chat = await client.post(
            f"/v1/agents/{slug}/chat", json={"message": "hi"}, headers=owner.headers
        )
        replies.append(chat.json()["usage"])
    async with state.sessions() as session:
        rows = (
            await session.scalars(select(UsageLog).where(UsageLog.team_id == owner.team_id))
        ).all()
    assert len(rows) == 3
    assert {r.status.value for r in rows} == {"complete"}
    report = (await client.get("/v1/usage", headers=owner.headers)).json()
    total_in = sum(u["input_tokens"] for u in replies)
    total_out = sum(u["output_tokens"] for u in replies)
    assert report["total"] == {
        "runs": 3,
        "input_tokens": total_in,
        "output_tokens": total_out,
        "total_tokens": total_in + total_out,
    }
    assert [(a["agent"], a["runs"]) for a in report["by_agent"]] == [("one", 2), ("two", 1)]
    assert [(m["model"], m["runs"]) for m in report["by_model"]] == [("demo", 3)]


async def test_date_range_filters_and_bad_range_is_422(client: httpx.AsyncClient) -> None:
    owner = await register(client)
    await create_agent(client, owner, "bot")
    await client.post("/v1/agents/bot/chat", json={"message": "hi"}, headers=owner.headers)
    past = datetime.now(UTC) - timedelta(days=10)
    old = await client.get(
        "/v1/usage",
        params={"from": (past - timedelta(days=1)).isoformat(), "to": past.isoformat()},
        headers=owner.headers,
    )
    assert old.json()["total"]["runs"] == 0
    today = await client.get(
        "/v1/usage", params={"from": past.date().isoformat()}, headers=owner.headers
    )
    assert today.json()["total"]["runs"] == 1
    bad = await client.get(
        "/v1/usage", params={"from": "2030-01-02", "to": "2030-01-01"}, headers=owner.headers
    )
    assert bad.status_code == 422
