"""``agentstream chat`` against a real server: REPL commands, continuing, live streaming."""

from __future__ import annotations

import asyncio
import os
import pty
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from functools import partial

import httpx
import pyte
import pytest

from tests.e2e.server import ServerProcess
from tests.factories import Account, create_agent, register

pytestmark = pytest.mark.e2e

# Slow enough that a reply takes ~2 s to stream, so "before it finishes" is observable.
TOKEN_DELAY_MS = 40
REPLY_END = "`openai:gpt-4o-mini`."  # the last words of the demo model's echo reply


@pytest.fixture(scope="module")
def server(database_url: str) -> Iterator[ServerProcess]:
    process = ServerProcess(
        {
            "AGENTSTREAM_DATABASE_URL": database_url,
            "AGENTSTREAM_DEMO_TOKEN_DELAY_MS": str(TOKEN_DELAY_MS),
            "AGENTSTREAM_MEMORY_EXTRACTION": "false",
        }
    )
    process.start()
    yield process
    process.stop()


@pytest.fixture
async def http(server: ServerProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        yield client


@pytest.fixture
async def owner(http: httpx.AsyncClient) -> Account:
    account = await register(http)
    await create_agent(http, account, "cli")
    return account


async def start_cli(
    server: ServerProcess, owner: Account, *args: str
) -> asyncio.subprocess.Process:
    """``agentstream chat cli`` as its own process, stdin and stdout pipes."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "agentstream",
        "chat",
        "cli",
        "--url",
        server.url,
        "--email",
        owner.email,
        "--password",
        owner.password,
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "COLUMNS": "200"},
    )


async def run_cli(server: ServerProcess, owner: Account, *args: str, stdin: str = "") -> str:
    process = await start_cli(server, owner, *args)
    output, _ = await asyncio.wait_for(process.communicate(stdin.encode()), 60)
    assert process.returncode == 0, output.decode()
    return output.decode()


async def conversations(http: httpx.AsyncClient, owner: Account) -> list[dict[str, object]]:
    response = await http.get("/v1/conversations?agent=cli", headers=owner.headers)
    assert response.status_code == 200
    items: list[dict[str, object]] = response.json()["items"]
    return items


@pytest.mark.parametrize("word", ["exit", "quit", "/quit"])
async def test_exit_and_quit_end_the_repl_with_code_0(
    server: ServerProcess, http: httpx.AsyncClient, owner: Account, word: str
) -> None:
    # Lines after the exit word are never sent: the REPL has ended.
    output = await run_cli(server, owner, stdin=f"{word}\nhello after exit\n")
    assert "You said" not in output
    assert await conversations(http, owner) == []


async def test_help_prints_the_commands_without_sending_a_message(
    server: ServerProcess, http: httpx.AsyncClient, owner: Account
) -> None:
    output = await run_cli(server, owner, stdin="/help\nexit\n")
    assert "/new" in output
    assert "exit, quit" in output
    assert await conversations(http, owner) == []


async def test_conversation_option_continues_an_earlier_conversation(
    server: ServerProcess, http: httpx.AsyncClient, owner: Account
) -> None:
    await run_cli(server, owner, "-m", "first turn")
    [conversation] = await conversations(http, owner)
    conversation_id = str(conversation["id"])
    output = await run_cli(server, owner, "--conversation", conversation_id, stdin="again\nquit\n")
    assert "You said: again" in output
    assert f"--conversation {conversation_id}" in output  # the REPL says how to continue
    assert [c["id"] for c in await conversations(http, owner)] == [conversation_id]
    messages = await http.get(
        f"/v1/conversations/{conversation_id}/messages", headers=owner.headers
    )
    assert [m["role"] for m in messages.json()["items"]] == ["user", "assistant"] * 2


async def test_an_unknown_conversation_is_a_clear_error(
    server: ServerProcess, owner: Account
) -> None:
    process = await start_cli(
        server, owner, "--conversation", "00000000-0000-4000-8000-000000000000", "-m", "hi"
    )
    output, _ = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 1
    assert "conversation_not_found" in output.decode()


async def read_until(read: Callable[[], Awaitable[bytes]], marker: bytes) -> bytes:
    """Read the CLI's output until ``marker`` appears (bounded)."""
    seen = b""
    deadline = time.monotonic() + 30
    while marker not in seen:
        assert time.monotonic() < deadline, seen
        chunk = await asyncio.wait_for(read(), 30)
        assert chunk, f"CLI output ended before {marker!r}: {seen!r}"
        seen += chunk
    return seen


async def test_tokens_reach_a_pipe_as_they_arrive(server: ServerProcess, owner: Account) -> None:
    process = await start_cli(server, owner, "-m", "streaming check")
    assert process.stdout is not None
    seen = await read_until(partial(process.stdout.read, 4096), b"You said")
    # The first words are out while the reply is still streaming (~50 tokens, 40 ms apart).
    assert REPLY_END.encode() not in seen
    assert process.returncode is None
    rest, _ = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0
    assert REPLY_END in (seen + rest).decode()


class Terminal:
    """``agentstream chat`` on a real pty, its output kept and replayed on a pyte screen."""

    COLUMNS, LINES = 120, 40

    def __init__(self, master: int) -> None:
        self.read = partial(asyncio.to_thread, os.read, master, 4096)
        self.seen = b""

    async def until(self, marker: bytes) -> None:
        self.seen += await read_until(self.read, marker)

    async def to_the_end(self) -> None:
        while chunk := await asyncio.wait_for(self._read_or_eof(), 30):
            self.seen += chunk

    async def _read_or_eof(self) -> bytes:
        try:
            return await self.read()
        except OSError:  # EIO: the child closed the pty
            return b""

    def screen(self) -> str:
        screen = pyte.Screen(self.COLUMNS, self.LINES)
        pyte.ByteStream(screen).feed(self.seen)
        return "\n".join(line.rstrip() for line in screen.display)


@asynccontextmanager
async def on_a_terminal(
    server: ServerProcess, owner: Account, message: str
) -> AsyncIterator[tuple[Terminal, asyncio.subprocess.Process]]:
    # rich behaves differently on a terminal (colours, live display): a real pty.
    master, slave = pty.openpty()
    args = ["--url", server.url, "--email", owner.email, "--password", owner.password]
    size = {"COLUMNS": str(Terminal.COLUMNS), "LINES": str(Terminal.LINES)}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        *["-m", "agentstream", "chat", "cli", *args, "-m", message],
        stdin=asyncio.subprocess.DEVNULL,
        stdout=slave,
        stderr=slave,
        env={**os.environ, **size, "TERM": "xterm"},
    )
    os.close(slave)
    try:
        yield Terminal(master), process
    finally:
        os.close(master)


async def test_tokens_reach_a_terminal_as_they_arrive(
    server: ServerProcess, owner: Account
) -> None:
    async with on_a_terminal(server, owner, "streaming check") as (terminal, process):
        await terminal.until(b"You said")
        assert REPLY_END.encode() not in terminal.seen  # ~50 tokens, 40 ms apart
        assert process.returncode is None
        await terminal.to_the_end()
        assert await asyncio.wait_for(process.wait(), 30) == 0
    screen = terminal.screen()
    assert screen.count("You said") == 1  # the reply is on the screen once
    assert "`" not in screen  # and drawn as Markdown: `openai:gpt-4o-mini` as code
    assert "openai:gpt-4o-mini" in screen


async def test_a_reply_on_a_terminal_is_drawn_as_markdown_once_it_ends(
    server: ServerProcess, owner: Account
) -> None:
    async with on_a_terminal(server, owner, "show me markdown") as (terminal, process):
        await terminal.until(b"**formatted**")  # streamed as plain text first
        await terminal.to_the_end()
        assert await asyncio.wait_for(process.wait(), 30) == 0
    screen = terminal.screen()
    assert screen.count("Here is a formatted reply") == 1
    assert "What it shows" in screen
    assert "• " in screen  # bullets
    assert 'return f"Hello, {name}!"' in screen
    for source in ("**", "```", "## "):
        assert source not in screen, source
