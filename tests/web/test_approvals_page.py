"""The chat page shows a paused reply's tool call with its arguments and Approve / Deny; the
request survives a reload, and a decision continues the reply (headless Chromium, real server,
a real MCP server whose ``approval`` is ``"always"``)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser

from tests.e2e.server import ServerProcess
from tests.factories import Account, create_agent, register
from tests.fakes.mcp_server import ToolServer, serve_mcp
from tests.fakes.openai_server import FakeOpenAI, Reply, ToolCall
from tests.web.test_chat_page import ChatPage

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def approval_server(database_url: str, upstream: FakeOpenAI) -> Iterator[ServerProcess]:
    process = ServerProcess(
        {
            "AGENTSTREAM_DATABASE_URL": database_url,
            "OPENAI_BASE_URL": upstream.base_url,
            "OPENAI_API_KEY": "test-key",
            "AGENTSTREAM_MCP_ALLOWED_HOSTS": "127.0.0.1",
        }
    )
    process.start()
    yield process
    process.stop()


@pytest.fixture
async def http(approval_server: ServerProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=approval_server.url, timeout=30) as client:
        yield client


@pytest.fixture
async def chat(browser: Browser, approval_server: ServerProcess) -> AsyncIterator[ChatPage]:
    context = await browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        yield ChatPage(await context.new_page(), approval_server)
    finally:
        await context.close()


@pytest.fixture
async def mcp() -> AsyncIterator[tuple[str, ToolServer]]:
    tools = ToolServer()
    async with serve_mcp(tools) as url:
        yield url, tools


async def _guarded(http: httpx.AsyncClient, upstream: FakeOpenAI, url: str) -> Account:
    account = await register(http)
    registered = await http.post(
        "/v1/mcp-servers",
        json={"name": "srv", "url": url, "approval": "always"},
        headers=account.headers,
    )
    assert registered.status_code == 201, registered.text
    model = f"page-approval-{uuid.uuid4().hex[:8]}"
    upstream.reply(
        model, Reply(tokens=["All ", "done."], tool_call=ToolCall("srv__echo", {"text": "hi"}))
    )
    await create_agent(
        http, account, "guarded", model=f"openai:{model}", skills=[], mcp_servers=["srv"]
    )
    return account


@pytest.mark.parametrize("approve", [True, False])
async def test_page_approves_or_denies_a_tool_call_and_survives_a_reload(
    approve: bool,
    chat: ChatPage,
    http: httpx.AsyncClient,
    upstream: FakeOpenAI,
    mcp: tuple[str, ToolServer],
    artifacts: Path,
) -> None:
    url, tools = mcp
    account = await _guarded(http, upstream, url)
    await chat.sign_in(account)
    await chat.send("say hi")
    await chat.reply_status("awaiting_approval")
    panel = chat.page.locator(".approvals")
    await panel.wait_for()
    assert await panel.locator(".tool-name").inner_text() == "srv__echo"
    assert '"text": "hi"' in await panel.locator(".tool-input").inner_text()
    assert tools.headers == []
    await chat.screenshot(artifacts, "asking")

    # The request is the server's, not the page's: it is still there after a reload.
    await chat.page.reload()
    await chat.page.locator(".approvals").wait_for()
    item = chat.page.locator(".approvals .approval")
    if approve:
        await item.get_by_role("button", name="Approve").click()
    else:
        await item.get_by_label("Reason for srv__echo (optional)").fill("not today")
        await item.get_by_role("button", name="Deny").click()
    await chat.reply_status("complete")
    await chat.page.locator(".approvals").wait_for(state="detached")
    # The result fills the call where it was asked, in the paused reply.
    output = chat.page.locator(".message.assistant .tool-output").last
    expected = "echo: hi" if approve else "The user denied this call: not today"
    assert await output.text_content() == expected  # in a collapsed <details>
    assert await chat.reply_text() == "All done."
    assert len(tools.headers) == (1 if approve else 0)
    await chat.screenshot(artifacts, "decided")

    conversations = (
        await http.get("/v1/conversations?agent=guarded", headers=account.headers)
    ).json()["items"]
    shown = (
        await http.get(f"/v1/conversations/{conversations[0]['id']}", headers=account.headers)
    ).json()
    assert shown["pending_approvals"] == []
    assert shown["approvals"][0]["approved"] is approve
    if not approve:
        assert shown["approvals"][0]["reason"] == "not today"
    assert chat.errors == []
