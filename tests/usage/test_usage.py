"""Usage: one row per run and team totals by agent and model over a date range."""

from __future__ import annotations

import random
import uuid
from collections import Counter
from datetime import UTC, date, datetime, timedelta

import httpx
from sqlalchemy import select

from agentstream.models import MessageStatus, UsageDaily, UsageLog
from agentstream.state import AppState
from tests.factories import Account, add_member, create_agent, register


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


async def _log_usage(
    state: AppState, team_id: uuid.UUID, rows: list[tuple[datetime, uuid.UUID, uuid.UUID, str]]
) -> None:
    """Usage rows as runs would leave them: ``(when, agent, user, model)``, 10 + 1 tokens."""
    async with state.sessions() as session, session.begin():
        session.add_all(
            UsageLog(
                team_id=team_id,
                agent_id=agent_id,
                user_id=user_id,
                model=model,
                input_tokens=10,
                output_tokens=1,
                duration_ms=5,
                status=MessageStatus.complete,
                created_at=when,
            )
            for when, agent_id, user_id, model in rows
        )


async def _team_of_two(client: httpx.AsyncClient) -> tuple[Account, Account, dict[str, uuid.UUID]]:
    owner, member = await register(client), await register(client)
    await add_member(client, owner, member, "member")
    agents = {}
    for slug in ("one", "two"):
        agents[slug] = uuid.UUID((await create_agent(client, owner, slug))["id"])
    return owner, member, agents


async def test_a_report_adds_whole_days_and_partial_edges_exactly(
    client: httpx.AsyncClient, state: AppState
) -> None:
    owner, member, agents = await _team_of_two(client)
    base = datetime(2026, 3, 1, tzinfo=UTC)
    randomly = random.Random(21)
    rows = [
        (
            base + timedelta(minutes=randomly.randrange(6 * 24 * 60)),
            agents[randomly.choice(("one", "two"))],
            randomly.choice((owner.user_id, member.user_id)),
            randomly.choice(("demo", "openai:gpt")),
        )
        for _ in range(300)
    ]
    await _log_usage(state, owner.team_id, rows)
    slug_of = {v: k for k, v in agents.items()}
    ranges = [(base, base + timedelta(days=6))] + [
        tuple(sorted(base + timedelta(minutes=randomly.randrange(6 * 24 * 60)) for _ in "ab"))
        for _ in range(12)
    ]
    ranges += [(base + timedelta(hours=5), base + timedelta(hours=7))]  # within one day
    ranges += [(base + timedelta(hours=20), base + timedelta(hours=30))]  # across midnight
    for start, end in ranges:
        if start == end:
            continue
        report = await client.get(
            "/v1/usage",
            params={"from": start.isoformat(), "to": end.isoformat()},
            headers=owner.headers,
        )
        assert report.status_code == 200, report.text
        body = report.json()
        inside = [r for r in rows if start <= r[0] < end]
        assert body["total"]["runs"] == len(inside)
        assert body["total"]["total_tokens"] == 11 * len(inside)
        by_day = Counter((r[0].date().isoformat(), slug_of[r[1]]) for r in inside)
        assert {(d["day"], d["agent"]): d["runs"] for d in body["by_day"]} == by_day
        assert [d["day"] for d in body["by_day"]] == sorted(d["day"] for d in body["by_day"])
        by_user = Counter(r[2] for r in inside)
        assert {uuid.UUID(u["user_id"]): u["runs"] for u in body["by_user"]} == by_user
        by_model = Counter(r[3] for r in inside)
        assert {m["model"]: m["runs"] for m in body["by_model"]} == by_model


async def test_each_usage_row_is_added_to_its_days_rollup(
    client: httpx.AsyncClient, state: AppState
) -> None:
    owner, _, agents = await _team_of_two(client)
    day = datetime(2026, 5, 4, 23, 59, tzinfo=UTC)
    await _log_usage(state, owner.team_id, [(day, agents["one"], owner.user_id, "demo")] * 2)
    await _log_usage(
        state, owner.team_id, [(day + timedelta(minutes=2), agents["one"], owner.user_id, "demo")]
    )
    async with state.sessions() as session:
        rollup = (
            await session.execute(
                select(UsageDaily.day, UsageDaily.runs, UsageDaily.input_tokens)
                .where(UsageDaily.team_id == owner.team_id)
                .order_by(UsageDaily.day)
            )
        ).all()
    assert [tuple(r) for r in rollup] == [(date(2026, 5, 4), 2, 20), (date(2026, 5, 5), 1, 10)]


async def test_members_see_their_own_usage_and_admins_everyones(
    client: httpx.AsyncClient,
) -> None:
    owner, member, _ = await _team_of_two(client)
    for account in (owner, member, member):
        chat = await client.post(
            "/v1/agents/one/chat", json={"message": "hi"}, headers=account.in_team(owner.team_id)
        )
        assert chat.status_code == 200, chat.text
    mine = (await client.get("/v1/usage", headers=member.in_team(owner.team_id))).json()
    assert mine["total"]["runs"] == 3  # the team's totals are for every member to see
    assert [(u["user_id"], u["runs"]) for u in mine["by_user"]] == [(str(member.user_id), 2)]
    everyone = (await client.get("/v1/usage", headers=owner.headers)).json()
    assert {u["email"]: u["runs"] for u in everyone["by_user"]} == {
        member.email: 2,
        owner.email: 1,
    }
    today = datetime.now(UTC).date().isoformat()
    assert [(d["day"], d["agent"], d["runs"]) for d in everyone["by_day"]] == [(today, "one", 3)]
