"""The chat page at ``GET /`` in a real headless Chromium against a real server.

Each test drives the page as a user would and checks the outcome through the API too: the
text the page shows is the message the server stored.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, ConsoleMessage, Page

from tests.e2e.server import ServerProcess
from tests.factories import Account, create_agent, register

pytestmark = pytest.mark.e2e

SKILL_QUESTION = "What does the code-review skill do?"  # the demo model calls load_skill
LONG_REPLY = "Tell me a long story"  # ~440 tokens: 30 ms apart, about 13 s to stream

LAST_REPLY = "[...document.querySelectorAll('.message.assistant')].at(-1)"
# Resolves to the reply's text length once it exceeds ``min`` while the reply is streaming.
GROWN_WHILE_STREAMING = f"""(min) => {{
  const reply = {LAST_REPLY};
  if (!reply || reply.dataset.status !== "streaming") return false;
  const length = [...reply.querySelectorAll(".text")].map((p) => p.textContent).join("").length;
  return length > min ? length : false;
}}"""


class ChatPage:
    """The page under test, with the console errors it produced."""

    def __init__(self, page: Page, server: ServerProcess) -> None:
        self.page = page
        self.server = server
        self.errors: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.errors.append(f"pageerror: {error}"))

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(f"console: {message.text}")

    async def sign_in(self, account: Account) -> None:
        await self.page.goto(self.server.url + "/")
        await self.page.get_by_label("Email").fill(account.email)
        await self.page.get_by_label("Password").fill(account.password)
        await self.page.get_by_role("button", name="Sign in").click()
        await self.page.wait_for_selector("#chat-view:not([hidden])")

    async def send(self, text: str) -> None:
        composer = self.page.get_by_label("Message", exact=True)
        await composer.wait_for(state="visible")
        await composer.fill(text)
        await self.page.get_by_role("button", name="Send").click()

    async def reply_status(self, status: str, timeout_ms: float = 30_000) -> None:
        await self.page.wait_for_function(
            f"(status) => {LAST_REPLY}?.dataset.status === status", arg=status, timeout=timeout_ms
        )

    async def reply_text(self) -> str:
        # A reply's Markdown keeps its source (what the server stored) in data-source.
        text: str = await self.page.evaluate(
            f"[...{LAST_REPLY}.querySelectorAll('.text')]"
            ".map((p) => p.dataset.source ?? p.textContent).join('')"
        )
        return text

    async def grows_while_streaming(self) -> tuple[int, int]:
        """Two observations of the streaming reply's length, the second larger."""
        first = await self.page.wait_for_function(GROWN_WHILE_STREAMING, arg=0)
        seen = int(await first.json_value())
        second = await self.page.wait_for_function(GROWN_WHILE_STREAMING, arg=seen)
        return seen, int(await second.json_value())

    async def active_run(self) -> dict[str, Any]:
        raw = await self.page.evaluate("localStorage.getItem('agentstream.activeRun')")
        assert raw, "the page does not remember the streaming run"
        value: dict[str, Any] = json.loads(raw)
        return value

    async def screenshot(self, folder: Path, name: str) -> None:
        await self.page.screenshot(path=folder / f"{name}.png", full_page=True)


@pytest.fixture
async def http(page_server: ServerProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=page_server.url, timeout=30) as client:
        yield client


@pytest.fixture
async def chat(browser: Browser, page_server: ServerProcess) -> AsyncIterator[ChatPage]:
    context = await browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        yield ChatPage(await context.new_page(), page_server)
    finally:
        await context.close()


async def last_message(
    http: httpx.AsyncClient, account: Account, conversation_id: str
) -> dict[str, Any]:
    response = await http.get(
        f"/v1/conversations/{conversation_id}/messages", headers=account.headers
    )
    assert response.status_code == 200, response.text
    message: dict[str, Any] = response.json()["items"][-1]
    return message


async def test_page_and_assets_are_served_from_the_package_revalidated_and_not_in_openapi(
    http: httpx.AsyncClient,
) -> None:
    page = await http.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    for asset in (
        "/web/app.js",
        "/web/api.js",
        "/web/agents.js",
        "/web/render.js",
        "/web/markdown.js",
        "/web/vendor/marked.esm.js",
        "/web/vendor/purify.es.mjs",
        "/web/style.css",
    ):
        response = await http.get(asset)
        assert response.status_code == 200, asset
        if asset.endswith(("js", "mjs")):  # browsers refuse modules of another type
            assert "javascript" in response.headers["content-type"], asset
        assert response.headers["cache-control"] == "no-cache", asset  # no stale modules
        assert "etag" in response.headers, asset
    assert (await http.get("/web/endpoints.py")).status_code == 404
    assert "/" not in (await http.get("/openapi.json")).json()["paths"]


async def test_sign_in_create_agent_and_watch_a_reply_stream_with_its_tool_call(
    chat: ChatPage, http: httpx.AsyncClient, artifacts: Path
) -> None:
    account = await register(http)
    await chat.sign_in(account)
    # A new team has no agent: the page offers to create one, on the demo model by default.
    await chat.page.get_by_label("Name").fill("Code helper")
    assert await chat.page.get_by_label("Slug").input_value() == "code-helper"
    assert await chat.page.get_by_label("Model").input_value() == "demo"
    await chat.page.get_by_role("button", name="Create agent").click()
    await chat.page.wait_for_function(
        "() => document.querySelector('#agent').value === 'code-helper'"
    )

    await chat.send(SKILL_QUESTION)
    tool = chat.page.locator(".message.assistant details.tool").last
    await tool.wait_for()
    assert await tool.locator(".tool-name").inner_text() == "load_skill"
    first, second = await chat.grows_while_streaming()
    assert second > first
    await chat.reply_status("complete")
    await tool.locator("summary").click()  # collapsed by default; opens to show the result
    assert "code-review" in await tool.locator(".tool-input").inner_text()
    assert "# Skill: code-review" in await tool.locator(".tool-output").inner_text()
    await chat.screenshot(artifacts, "streamed")

    conversations = (
        await http.get("/v1/conversations?agent=code-helper", headers=account.headers)
    ).json()["items"]
    assert len(conversations) == 1
    stored = await last_message(http, account, conversations[0]["id"])
    assert stored["status"] == "complete"
    assert await chat.reply_text() == stored["content"]

    # Reopen it from the list: the stored tool call is shown with its result.
    await chat.page.get_by_role("button", name="New chat").click()
    await chat.page.locator(".message").first.wait_for(state="detached")
    await chat.page.locator("button.conversation").first.click()
    await chat.reply_status("complete")
    reopened = chat.page.locator(".message.assistant details.tool")
    assert await reopened.locator(".tool-name").inner_text() == "load_skill"
    await reopened.locator("summary").click()
    assert "# Skill: code-review" in await reopened.locator(".tool-output").inner_text()
    assert await chat.reply_text() == stored["content"]
    await chat.screenshot(artifacts, "reopened")
    assert chat.errors == []


async def test_stop_cancels_the_run_and_the_stored_message_is_cancelled(
    chat: ChatPage, http: httpx.AsyncClient, artifacts: Path
) -> None:
    account = await register(http)
    await create_agent(http, account, "storyteller")
    await chat.sign_in(account)
    await chat.send(LONG_REPLY)
    await chat.grows_while_streaming()
    run = await chat.active_run()
    await chat.page.get_by_role("button", name="Stop").click()
    await chat.reply_status("cancelled")
    await chat.screenshot(artifacts, "stopped")

    stored = await last_message(http, account, run["conversation_id"])
    assert stored["id"] == run["run_id"]
    assert stored["status"] == "cancelled"
    shown = await chat.reply_text()
    assert shown == stored["content"]
    assert 0 < len(shown) < 1000  # stopped early: the whole story is over 2,000 characters
    await chat.page.get_by_role("button", name="Send").wait_for()  # ready for the next one
    assert chat.errors == []


async def test_reload_mid_reply_resumes_the_stream_to_the_stored_reply(
    chat: ChatPage, http: httpx.AsyncClient, artifacts: Path
) -> None:
    account = await register(http)
    await create_agent(http, account, "storyteller")
    await chat.sign_in(account)
    await chat.send(LONG_REPLY)
    await chat.grows_while_streaming()
    before = await chat.active_run()

    await chat.page.reload()
    # The same run streams on in the reopened conversation, and keeps growing.
    first, second = await chat.grows_while_streaming()
    assert second > first
    assert (await chat.active_run())["run_id"] == before["run_id"]
    await chat.screenshot(artifacts, "resumed")
    await chat.reply_status("complete")

    stored = await last_message(http, account, before["conversation_id"])
    assert stored["id"] == before["run_id"]
    assert stored["status"] == "complete"
    assert await chat.reply_text() == stored["content"]
    # The in-flight row was not shown as well as the resumed reply.
    assert await chat.page.locator(".message.user").count() == 1
    assert await chat.page.locator(".message.assistant").count() == 1
    assert await chat.page.evaluate("localStorage.getItem('agentstream.activeRun')") is None
    assert chat.errors == []


async def test_reply_streaming_in_one_browser_is_followed_and_stopped_from_another(
    chat: ChatPage, browser: Browser, page_server: ServerProcess, http: httpx.AsyncClient
) -> None:
    account = await register(http)
    await create_agent(http, account, "storyteller")
    await chat.sign_in(account)
    await chat.send(LONG_REPLY)
    await chat.grows_while_streaming()

    other_context = await browser.new_context()  # its own storage: nothing remembered
    try:
        other = ChatPage(await other_context.new_page(), page_server)
        await other.sign_in(account)
        await other.page.locator("button.conversation").first.click()
        await other.grows_while_streaming()  # found the running reply and follows it live
        await other.page.get_by_role("button", name="Stop").click()
        await other.reply_status("cancelled")
        await chat.reply_status("cancelled")  # the first browser sees the same run stop
        assert await other.reply_text() == await chat.reply_text()
        assert other.errors == []
    finally:
        await other_context.close()
    assert chat.errors == []


async def test_model_failure_shows_the_error_code_and_message(
    chat: ChatPage, http: httpx.AsyncClient
) -> None:
    account = await register(http)
    await create_agent(http, account, "offline", model="openai:gpt-4o-mini")
    await chat.sign_in(account)
    await chat.send("hello")
    await chat.reply_status("failed")
    shown = await chat.page.locator(".message.assistant .status").inner_text()
    assert "model_error" in shown
    assert "model" in shown.split("model_error", 1)[1]  # the event's human message follows
    place = json.loads(await chat.page.evaluate("localStorage.getItem('agentstream.place')"))
    stored = await last_message(http, account, place["conversation"])
    assert stored["status"] == "failed"
    assert await chat.page.get_by_role("button", name="Send").is_visible()
    assert chat.errors == []


async def test_expired_access_token_is_refreshed_without_signing_in_again(
    chat: ChatPage, http: httpx.AsyncClient
) -> None:
    account = await register(http)
    await create_agent(http, account, "helper")
    await chat.sign_in(account)
    stale = {"access_token": "expired", "refresh_token": account.refresh_token, "email": ""}
    await chat.page.evaluate(
        "(s) => localStorage.setItem('agentstream.tokens', JSON.stringify(s))", stale
    )
    await chat.page.reload()
    await chat.page.wait_for_function("() => document.querySelector('#agent').value === 'helper'")
    assert await chat.page.locator("#sign-in-view").is_hidden()
    tokens = json.loads(
        await chat.page.evaluate("localStorage.getItem('agentstream.tokens')") or "{}"
    )
    assert tokens["access_token"] != "expired"
    assert tokens["refresh_token"] != account.refresh_token  # rotated
    # The browser reports the one refused request; nothing else went wrong.
    assert all("status of 401" in error for error in chat.errors), chat.errors


async def test_page_fits_a_phone_screen(
    browser: Browser, page_server: ServerProcess, http: httpx.AsyncClient, artifacts: Path
) -> None:
    account = await register(http)
    await create_agent(http, account, "helper")
    context = await browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    try:
        chat = ChatPage(await context.new_page(), page_server)
        await chat.sign_in(account)
        await chat.send(SKILL_QUESTION)
        await chat.reply_status("complete")
        overflow = await chat.page.evaluate(
            "document.documentElement.scrollWidth - window.innerWidth"
        )
        assert overflow <= 0
        assert await chat.page.get_by_role("button", name="Send").is_visible()
        toggle = chat.page.get_by_role("button", name="Conversations")
        await toggle.click()
        assert await chat.page.locator("button.conversation").first.is_visible()
        await chat.screenshot(artifacts, "phone")
        assert chat.errors == []
    finally:
        await context.close()
