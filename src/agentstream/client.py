"""A small streaming client for the CLI (``agentstream chat``), over the advanced SSE endpoint.

On a terminal a reply streams as plain text and, once it ends, is shown as Markdown; to a
pipe it is written as it arrives, token by token, and left as the model wrote it.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

import httpx
from httpx_sse import aconnect_sse
from rich.console import Console, ConsoleOptions, RenderResult
from rich.live import Live
from rich.markup import escape
from rich.text import Text

if TYPE_CHECKING:
    from rich.markdown import Markdown

from agentstream.demo_account import DEMO_EMAIL, DEMO_PASSWORD
from agentstream.kit import jsonenc


class ClientError(Exception):
    """A failure to show the user (bad login, unreachable server, error event)."""


class _Tail:
    """The end of the text streamed so far: as many wrapped lines as fit on the screen, so
    the live region never scrolls and the finished reply replaces all of it."""

    def __init__(self) -> None:
        self.parts: list[str] = []

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        lines = Text("".join(self.parts)).wrap(console, options.max_width)
        yield from lines[-max(1, console.height - 1) :]


class _TerminalText:
    """Text of a reply on a terminal: streamed plain in a live region, then drawn as Markdown."""

    def __init__(self, console: Console) -> None:
        self.tail = _Tail()
        self.shown: _Tail | Markdown = self.tail
        self.live = Live(
            console=console,
            get_renderable=lambda: self.shown,
            refresh_per_second=12,
            vertical_overflow="visible",
            redirect_stdout=False,
            redirect_stderr=False,
        )
        self.live.start()

    def add(self, text: str) -> None:
        self.tail.parts.append(text)

    def close(self) -> None:
        # Imported here: markdown-it costs a piped or scripted chat half a second to load.
        from rich.markdown import Markdown

        self.shown = Markdown("".join(self.tail.parts))
        self.live.stop()  # its last refresh draws the Markdown in place of the plain text


class _PipedText:
    """Text of a reply to a pipe or file: each piece as it arrives, unchanged."""

    def __init__(self, console: Console) -> None:
        self.console = console

    def add(self, text: str) -> None:
        # soft_wrap: a token is a fragment of a line, rich must not wrap it on its own.
        self.console.print(text, end="", markup=False, highlight=False, soft_wrap=True)
        # Each piece must reach the pipe when it arrives, not when the reply ends: a pipe's
        # stdout is block-buffered unless someone flushes.
        self.console.file.flush()

    def close(self) -> None:
        self.console.print()


class ChatClient:
    def __init__(
        self,
        url: str,
        token: str | None,
        email: str | None,
        password: str | None,
        console: Console,
    ) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self.email = email or DEMO_EMAIL
        self.password = password or DEMO_PASSWORD
        self.console = console

    async def _login(self, http: httpx.AsyncClient) -> str:
        response = await http.post(
            "/v1/auth/login", json={"email": self.email, "password": self.password}
        )
        if response.status_code != 200:
            raise ClientError(f"Login failed ({response.status_code}): {response.text}")
        token: str = response.json()["access_token"]
        return token

    async def send(
        self, http: httpx.AsyncClient, slug: str, text: str, conversation_id: uuid.UUID | None
    ) -> uuid.UUID | None:
        """Stream one reply to the console as it arrives; returns the conversation id. A reply
        that pauses for approval asks y/n for each waiting tool call, then streams on."""
        body: dict[str, Any] = {"message": text}
        while True:
            if conversation_id:
                body["conversation_id"] = str(conversation_id)
            conversation_id, waiting = await self._stream(http, slug, body, conversation_id)
            if not waiting:
                return conversation_id
            decisions = self._decide(waiting)
            if decisions is None:
                return conversation_id
            body = {"decisions": decisions}

    def _decide(self, waiting: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
        """y/n for each tool call waiting for approval; ``None`` when input ends first (the calls
        stay pending, to decide later)."""
        decisions: list[dict[str, Any]] = []
        for approval in waiting:
            args = jsonenc.dumps(approval["tool_args"]).decode()
            call = escape(f"Allow {approval['tool_name']}({args})? [y/N] ")
            question = f"[yellow]{call}[/]"
            try:
                answer = self.console.input(question).strip().lower()
            except EOFError:
                self.console.print("\n[dim]Left undecided; the reply waits for a decision.[/]")
                return None
            approved = answer in ("y", "yes")
            decision: dict[str, Any] = {
                "approval_id": approval["approval_id"],
                "approved": approved,
            }
            if not approved:
                decision["reason"] = "denied in the terminal"
            decisions.append(decision)
        return decisions

    async def _stream(
        self,
        http: httpx.AsyncClient,
        slug: str,
        body: dict[str, Any],
        conversation_id: uuid.UUID | None,
    ) -> tuple[uuid.UUID | None, list[dict[str, Any]]]:
        """One run's events to the console: its conversation, and the calls it waits on."""
        waiting: list[dict[str, Any]] = []
        async with aconnect_sse(
            http, "POST", f"/v1/agents/{slug}/chat/stream/advanced", json=body
        ) as source:
            if source.response.status_code != 200:
                await source.response.aread()
                raise ClientError(f"{source.response.status_code}: {source.response.text}")
            piece: _TerminalText | _PipedText | None = None  # the text since the last tool call
            try:
                async for sse in source.aiter_sse():
                    event = jsonenc.loads(sse.data)
                    if event["type"] == "text_delta":
                        piece = piece or self._text()
                        piece.add(event["content"])
                        continue
                    if piece is not None and event["type"] in ("tool_call", "done", "error"):
                        piece.close()
                        piece = None
                    if event["type"] == "approval_required":
                        waiting.append(event)
                    if event["type"] == "done":
                        paused = event.get("status") == "awaiting_approval"
                        return uuid.UUID(event["conversation_id"]), waiting if paused else []
                    if event["type"] == "error":
                        raise ClientError(f"{event['error_code']}: {event['content']}")
                    self._render(event)
            finally:
                if piece is not None:
                    piece.close()
        return conversation_id, []

    def _text(self) -> _TerminalText | _PipedText:
        return _TerminalText(self.console) if self.console.is_terminal else _PipedText(self.console)

    def _render(self, event: dict[str, Any]) -> None:
        kind = event["type"]
        if kind == "tool_call":
            args = jsonenc.dumps(event["tool_args"]).decode()
            self.console.print(f"[dim]→ {event['tool_name']}({args})[/]")
        elif kind == "tool_result":
            preview = event["tool_result_content"][:80].replace("\n", " ")
            self.console.print(f"[dim]← {preview}…[/]")
        else:
            return
        self.console.file.flush()

    async def repl(
        self, slug: str, message: str | None, conversation_id: uuid.UUID | None = None
    ) -> None:
        """Send ``message`` once, or read messages from the terminal until EOF or ``exit``.

        ``conversation_id`` continues an earlier conversation.
        """
        try:
            async with httpx.AsyncClient(base_url=self.url, timeout=None) as http:
                token = self.token or await self._login(http)
                http.headers["Authorization"] = f"Bearer {token}"
                if message is not None:
                    await self.send(http, slug, message, conversation_id)
                    return
                await self._loop(http, slug, conversation_id)
        except httpx.HTTPError as exc:
            raise ClientError(f"Cannot reach {self.url}: {exc}") from exc

    async def _loop(
        self, http: httpx.AsyncClient, slug: str, conversation: uuid.UUID | None
    ) -> None:
        self.console.print(f"Chatting with [bold]{slug}[/] ([bold]/help[/] for commands)")
        if conversation is not None:
            self.console.print(f"[dim]Continuing conversation {conversation}[/]")
        while True:
            try:
                text = self.console.input("[bold cyan]you> [/]").strip()
            except EOFError:
                self.console.print()
                break
            command = text.lower()
            if command in _EXIT:
                break
            if command in ("/help", "help", "?"):
                self.console.print(HELP, markup=False, highlight=False)
            elif command == "/new":
                conversation = None
                self.console.print("[dim]Started a new conversation.[/]")
            elif text:
                conversation = await self.send(http, slug, text, conversation)
        if conversation is not None:
            self.console.print(
                f"[dim]To continue: agentstream chat {slug} --conversation {conversation}[/]",
                soft_wrap=True,
            )


_EXIT = frozenset({"exit", "quit", "/exit", "/quit", ":q"})

HELP = """Type a message and press Enter to send it; the reply streams as it is written.
Commands:
  /help       show this help
  /new        start a new conversation
  exit, quit  leave (so does Ctrl-D)"""
