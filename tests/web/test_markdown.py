"""Replies as sanitised Markdown in the chat page, in a real headless Chromium.

The demo model answers "markdown" with a formatted sample (streamed word by word) and echoes
anything else, so a message carrying HTML comes back in the reply as model output would.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.factories import create_agent, register
from tests.web.test_chat_page import LAST_REPLY, ChatPage, chat, http, last_message

pytestmark = pytest.mark.e2e
__all__ = ["chat", "http"]  # fixtures

# The reply's elements a formatted reply must have, by CSS selector.
FORMATTED = {
    "heading": "h2",
    "bold": "strong",
    "emphasis": "em",
    "inline code": "p code, li code",
    "bullet list": "ul > li",
    "numbered list": "ol > li",
    "code block": "pre > code.language-python",
    "quote": "blockquote",
}
LINK = f"{LAST_REPLY}.querySelector('a')"

# While the reply streams: once its first paragraph is a complete block (not the open one,
# the last, which the next token may still change), tag it and say how long the text is.
TAG_FIRST_BLOCK = f"""() => {{
  const reply = {LAST_REPLY};
  const first = reply?.querySelector(".markdown > p");
  if (!first || reply.dataset.status !== "streaming") return false;
  first.dataset.tagged = "yes";
  return reply.querySelector(".markdown").textContent.length;
}}"""
# Once the reply has grown past ``seen`` characters while still streaming: whether the tagged
# paragraph is still the same element (complete blocks are not redrawn per token).
FIRST_BLOCK_KEPT = f"""(seen) => {{
  const reply = {LAST_REPLY};
  if (reply.dataset.status !== "streaming") return "ended too soon";
  if (reply.querySelector(".markdown").textContent.length <= seen) return false;
  return reply.querySelector(".markdown > p").dataset.tagged === "yes" ? "kept" : "redrawn";
}}"""


async def test_a_reply_streams_as_formatted_markdown(
    chat: ChatPage, http: httpx.AsyncClient, artifacts: Path
) -> None:
    account = await register(http)
    await create_agent(http, account, "writer")
    await chat.sign_in(account)
    await chat.send("Show me some markdown")  # ~70 tokens, 30 ms apart
    # Progressive: the first paragraph is rendered while the reply streams, and stays the
    # same element as more text arrives (settled blocks are not redrawn per token).
    seen = await (await chat.page.wait_for_function(TAG_FIRST_BLOCK)).json_value()
    kept = await chat.page.wait_for_function(FIRST_BLOCK_KEPT, arg=seen)
    assert await kept.json_value() == "kept"
    await chat.reply_status("complete")

    reply = chat.page.locator(".message.assistant").last
    for name, selector in FORMATTED.items():
        assert await reply.locator(selector).count() >= 1, name
    assert "def greet" in await reply.locator("pre > code").inner_text()
    link = await chat.page.evaluate(
        f"(() => {{ const a = {LINK}; return [a.href, a.rel, a.target]; }})()"
    )
    assert link == ["https://ai.pydantic.dev/", "noopener noreferrer", "_blank"]
    assert "**" not in await reply.inner_text()  # rendered, not shown as source
    await chat.screenshot(artifacts, "formatted")  # the README's docs/chat-markdown.png

    place = await chat.page.evaluate("JSON.parse(localStorage.getItem('agentstream.place'))")
    stored = await last_message(http, account, place["conversation"])
    assert await chat.reply_text() == stored["content"]
    # Reopened from the server, the stored reply renders the same elements.
    await chat.page.reload()
    await chat.reply_status("complete")
    for name, selector in FORMATTED.items():
        assert await reply.locator(selector).count() >= 1, name
    assert chat.errors == []


XSS = (
    "Try <img src=x onerror=\"window.__xss='img'\"> and "
    "<script>window.__xss='script'</script> and "
    "[a link](javascript:window.__xss='link') in a reply"
)
# Everything in the reply that could run: elements, handlers, script URLs; and the flag.
ACTIVE_CONTENT = f"""() => {{
  const reply = {LAST_REPLY};
  return {{
    flag: window.__xss ?? null,
    elements: reply.querySelectorAll("img, script, iframe, object, embed, svg, style").length,
    handlers: [...reply.querySelectorAll("*")].filter(
      (node) => [...node.attributes].some((a) => a.name.startsWith("on"))).length,
    scriptLinks: [...reply.querySelectorAll("a")].filter(
      (a) => (a.getAttribute("href") ?? "").toLowerCase().startsWith("javascript")).length,
  }};
}}"""


async def test_html_and_script_in_a_reply_never_run(
    chat: ChatPage, http: httpx.AsyncClient
) -> None:
    account = await register(http)
    await create_agent(http, account, "echo")
    await chat.sign_in(account)
    await chat.send(XSS)
    await chat.reply_status("complete")
    inert = {"flag": None, "elements": 0, "handlers": 0, "scriptLinks": 0}
    assert await chat.page.evaluate(ACTIVE_CONTENT) == inert
    # The markup is shown as the text it is.
    shown = await chat.page.locator(".message.assistant .markdown").last.inner_text()
    assert "<img src=x" in shown
    assert "<script>" in shown

    await chat.page.reload()  # the stored reply, rendered whole
    await chat.reply_status("complete")
    assert await chat.page.evaluate(ACTIVE_CONTENT) == inert
    assert chat.errors == []
