"""The Usage view in Chromium: tokens per day per agent as an SVG bar chart, for admins only.

Today's usage comes from real chats; earlier days' from usage rows written with past dates
(as the server would have written them then), one of them older than the 30 days shown.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import create_async_engine

from agentstream.models import MessageStatus, UsageLog
from tests.e2e.server import ServerProcess
from tests.factories import Account, add_member, create_agent, register
from tests.web.test_chat_page import ChatPage, http

pytestmark = pytest.mark.e2e
__all__ = ["http"]  # fixture

BARS = "() => [...document.querySelectorAll('svg.usage-chart g.bar')].map((g) => g.dataset.day)"


@pytest.fixture
async def page(browser: Browser, page_server: ServerProcess) -> AsyncIterator[ChatPage]:
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        yield ChatPage(await context.new_page(), page_server)
    finally:
        await context.close()


async def chat(http: httpx.AsyncClient, account: Account, slug: str) -> None:
    response = await http.post(
        f"/v1/agents/{slug}/chat", json={"message": "hello"}, headers=account.headers
    )
    assert response.status_code == 200, response.text


async def earlier_usage(
    database_url: str, account: Account, agents: dict[str, Any], days_ago: dict[int, str]
) -> None:
    """A usage row per ``{days ago: agent slug}``, dated that many days back (at noon UTC)."""
    noon = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)
    engine = create_async_engine(database_url)
    try:
        async with engine.begin() as connection:
            for back, slug in days_ago.items():
                values = {
                    "id": uuid.uuid4(),
                    "team_id": account.team_id,
                    "user_id": account.user_id,
                    "agent_id": uuid.UUID(agents[slug]["id"]),
                    "model": "demo",
                    "input_tokens": 100 * back,
                    "output_tokens": 10 * back,
                    "status": MessageStatus.complete,
                    "created_at": noon - timedelta(days=back),
                }
                await connection.execute(insert(UsageLog).values(values))
    finally:
        await engine.dispose()


def day(back: int) -> str:
    return (datetime.now(UTC) - timedelta(days=back)).date().isoformat()


async def test_admins_see_tokens_per_day_per_agent_and_per_user(
    page: ChatPage, http: httpx.AsyncClient, database_url: str, artifacts: Path
) -> None:
    owner, member = await register(http, "owner"), await register(http, "member")
    await add_member(http, owner, member, "member")
    agents = {slug: await create_agent(http, owner, slug) for slug in ("alpha", "beta")}
    await chat(http, owner, "alpha")
    response = await http.post(
        "/v1/agents/beta/chat", json={"message": "hi"}, headers=member.in_team(owner.team_id)
    )
    assert response.status_code == 200, response.text
    await earlier_usage(database_url, owner, agents, {3: "alpha", 12: "beta", 45: "alpha"})

    await page.sign_in(owner)
    await page.page.get_by_role("button", name="Usage").click()
    await page.page.locator("svg.usage-chart").wait_for()
    # One bar per day with tokens, oldest first; the day 45 days back is outside the view.
    assert await page.page.evaluate(BARS) == [day(12), day(3), day(0)]
    today = page.page.locator(f"svg.usage-chart g.bar[data-day='{day(0)}'] rect")
    assert await today.count() == 2  # alpha and beta, stacked
    titles = await today.evaluate_all("(rects) => rects.map((r) => r.textContent)")
    assert any("alpha" in t for t in titles)
    assert any("beta" in t for t in titles)
    legend = await page.page.locator(".usage-legend li").all_inner_texts()
    assert sorted(legend) == ["alpha", "beta"]

    report = (await http.get("/v1/usage", headers=owner.headers)).json()
    rows = page.page.locator("table.usage-users tbody tr")
    assert await rows.count() == len(report["by_user"]) == 2
    shown = await rows.evaluate_all(
        "(rows) => rows.map((r) => [...r.cells].map((c) => c.textContent))"
    )
    numbers = ("runs", "input_tokens", "output_tokens", "total_tokens")
    expected = [[u["display_name"], *(f"{u[k]:,}" for k in numbers)] for u in report["by_user"]]
    assert sorted(shown) == sorted(expected)
    await page.screenshot(artifacts, "usage")
    await page.page.get_by_role("button", name="Back to chat").click()
    await page.page.locator("#chat-view").wait_for()
    assert page.errors == []


async def test_a_member_is_not_offered_the_usage_view(
    page: ChatPage, http: httpx.AsyncClient
) -> None:
    owner, member = await register(http, "boss"), await register(http, "member")
    await create_agent(http, owner, "team-agent")
    await add_member(http, owner, member, "member")
    # The member leaves their own personal team (handing it to the owner first), so the
    # team they sign in to is the owner's, where they are a plain member.
    handover = {"email": owner.email, "role": "owner"}
    added = await http.post(
        f"/v1/teams/{member.team_id}/members", json=handover, headers=member.headers
    )
    assert added.status_code == 201, added.text
    left = await http.delete(
        f"/v1/teams/{member.team_id}/members/{member.user_id}",
        headers=owner.in_team(member.team_id),
    )
    assert left.status_code == 204, left.text

    await page.sign_in(member)
    await page.page.wait_for_function("() => document.querySelector('#agent').value")
    assert await page.page.evaluate("document.querySelector('#agent').value") == "team-agent"
    assert await page.page.locator("#usage-open").is_hidden()
    assert page.errors == []
