"""``kill -9`` during a database outage loses no reply: a reply whose final write failed is in
the worker's journal on disk before the client gets ``done``, and the next start stores it."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest
from httpx_sse import aconnect_sse

from tests.e2e.server import ServerProcess
from tests.e2e.test_lifecycle import stored_reply
from tests.factories import create_agent, register
from tests.fakes.tcpproxy import TcpProxy

pytestmark = pytest.mark.e2e


class Outage:
    """The database going away under a running server, and coming back: PostgreSQL cut at a
    TCP proxy, SQLite's write lock held by another process."""

    def __init__(self, database_url: str) -> None:
        self.database_url = database_url
        self._proxy: TcpProxy | None = None
        self._holder: sqlite3.Connection | None = None

    @contextlib.contextmanager
    def serving(self) -> Iterator[str]:
        """The URL the server should use."""
        if self.database_url.startswith("sqlite"):
            yield self.database_url
            return
        target = urlsplit(self.database_url)
        with TcpProxy(target.hostname or "127.0.0.1", target.port or 5432) as proxy:
            self._proxy = proxy
            netloc = f"{target.username}@127.0.0.1:{proxy.port}"
            yield urlunsplit(target._replace(netloc=netloc))

    def begin(self) -> None:
        if self._proxy is not None:
            self._proxy.kill()
            return
        path = self.database_url.split(":///", 1)[1]
        self._holder = sqlite3.connect(path, isolation_level=None)
        self._holder.execute("BEGIN IMMEDIATE")

    def end(self) -> None:
        if self._proxy is not None:
            self._proxy.restore()
        if self._holder is not None:
            self._holder.execute("ROLLBACK")
            self._holder.close()
            self._holder = None


async def test_a_reply_finished_during_an_outage_survives_kill_9(database_url: str) -> None:
    outage = Outage(database_url)
    with outage.serving() as url:
        first = ServerProcess(
            {
                "AGENTSTREAM_DATABASE_URL": url,
                "AGENTSTREAM_DEMO_TOKEN_DELAY_MS": "20",
                "AGENTSTREAM_CHECKPOINT_S": "0.2",
                "AGENTSTREAM_DATABASE_TIMEOUT_S": "1",
            }
        )
        first.start()
        journal = first.data_dir / "journal"
        try:
            async with httpx.AsyncClient(base_url=first.url, timeout=30) as http:
                owner = await register(http)
                await create_agent(http, owner, "bot")
                events: list[dict[str, Any]] = []
                async with aconnect_sse(
                    http,
                    "POST",
                    "/v1/agents/bot/chat/stream",
                    json={"message": "echo these words back to me please " * 3},
                    headers=owner.headers,
                ) as source:
                    async for sse in source.aiter_sse():
                        events.append(json.loads(sse.data))
                        if len(events) == 1:
                            outage.begin()  # mid-reply: nothing more can be stored
            assert events[-1]["type"] == "done", events[-3:]
            # The client got `done` only once the reply was on disk; then the worker dies.
            assert [p.suffix for p in journal.iterdir()] == [".jsonl"]
            assert first.process is not None
            os.killpg(first.process.pid, signal.SIGKILL)
            first.process.wait()
        finally:
            first.stop()
            outage.end()
    second = ServerProcess(
        {"AGENTSTREAM_DATABASE_URL": database_url, "AGENTSTREAM_DATA_DIR": str(first.data_dir)}
    )
    second.start()
    try:
        reply = await stored_reply(second, owner, events[-1]["conversation_id"])
    finally:
        second.stop()
    text = "".join(e["content"] for e in events if e["type"] == "text_delta")
    assert (reply["id"], reply["status"], reply["content"]) == (
        events[-1]["message_id"],
        "complete",
        text,
    )
    assert list(journal.glob("*.jsonl")) == []  # stored, and the journals gone
