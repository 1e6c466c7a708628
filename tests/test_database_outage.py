"""PostgreSQL going away: requests get 503 ``unavailable``, finished replies wait and are stored
once it is back. The database is reached through a TCP proxy the test cuts and restores."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest
from sqlalchemy import select, update

from agentstream.app import build_state, create_app
from agentstream.chat.translate import Reply
from agentstream.conversations.journal import unframe
from agentstream.conversations.writer import decode
from agentstream.db import transaction
from agentstream.models import Message, MessageStatus
from agentstream.state import AppState
from tests.conftest import make_settings
from tests.conversations.turns import new_turns, outcome, stored
from tests.factories import Account, create_agent, register
from tests.fakes.tcpproxy import TcpProxy
from tests.streaming.scripted import Script
from tests.streaming.wsclient import receive_until_terminal, ws_connect

# An outage of a database server: PostgreSQL only (SQLite has no server to lose).
pytestmark = pytest.mark.parametrize("database_url", ["postgres"], indirect=True)


@pytest.fixture
def proxy(database_url: str) -> Iterator[TcpProxy]:
    target = urlsplit(database_url)
    with TcpProxy(target.hostname or "127.0.0.1", target.port or 5432) as running:
        yield running


@pytest.fixture
async def outage_state(
    database_url: str, proxy: TcpProxy, tmp_path: Path
) -> AsyncIterator[AppState]:
    """App state whose database connections all go through ``proxy``."""
    parts = urlsplit(database_url)
    via_proxy = urlunsplit(parts._replace(netloc=f"{parts.username}@127.0.0.1:{proxy.port}"))
    settings = make_settings(
        via_proxy, tmp_path, checkpoint_s=0.05, database_timeout_s=2, shutdown_grace_s=2
    )
    async with build_state(settings) as state:
        yield state


@contextlib.asynccontextmanager
async def app_client(state: AppState) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(state.settings)
    app.state.agentstream = state
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as http:
        yield http


async def test_unreachable_database_is_503_unavailable_on_rest_and_streams(
    outage_state: AppState, proxy: TcpProxy
) -> None:
    async with app_client(outage_state) as client:
        owner = await register(client)
        await create_agent(client, owner, "bot")
        proxy.kill()
        try:
            for method, path, body in (
                ("GET", "/v1/agents", None),
                ("GET", "/v1/auth/me", None),
                ("POST", "/v1/auth/login", {"email": owner.email, "password": owner.password}),
                ("POST", "/v1/agents/bot/chat", {"message": "hi"}),
                ("POST", "/v1/agents/bot/chat/stream", {"message": "hi"}),
            ):
                response = await client.request(method, path, json=body, headers=owner.headers)
                assert response.status_code == 503, (path, response.text)
                assert response.json()["error"] == "unavailable"
                assert response.headers["Retry-After"] == "1"
        finally:
            proxy.restore()
        assert (await client.get("/v1/agents", headers=owner.headers)).status_code == 200


async def test_replies_finished_during_an_outage_are_stored_once_it_is_back(
    outage_state: AppState, proxy: TcpProxy
) -> None:
    script = Script(tokens=["part one, ", "part two"], hold_after=1)
    outage_state.models.register("scripted:outage", script.model())
    app = create_app(outage_state.settings)
    app.state.agentstream = outage_state
    async with app_client(outage_state) as client:
        owner: Account = await register(client)
        await create_agent(client, owner, "bot", model="scripted:outage")
        url = f"/v1/agents/bot/ws?token={owner.access_token}"
        async with contextlib.AsyncExitStack() as stack:
            sockets = [await stack.enter_async_context(ws_connect(app, url)) for _ in range(10)]
            for ws in sockets:
                await ws.receive_json()
                await ws.send_json({"type": "message", "content": "go"})
            await script.started.wait()
            async with asyncio.timeout(10):
                # Every run is held after its first token (bounded poll of a counter).
                while script.sent < 10:  # noqa: ASYNC110
                    await asyncio.sleep(0.01)
            proxy.kill()
            script.release.set()
            ends = [await receive_until_terminal(ws) for ws in sockets]
        # The clients got their normal terminal event although nothing could be stored yet,
        # and by then each reply was on disk, in this worker's journal.
        assert [e[-1]["type"] for e in ends] == ["done"] * 10
        assert outage_state.writer.pending == 10
        ids = [uuid.UUID(e[-1]["message_id"]) for e in ends]
        journal = outage_state.settings.data_dir / "journal" / f"{outage_state.worker_id}.jsonl"
        lines = journal.read_bytes().splitlines()
        assert sorted(decode(unframe(line) or b"")[0].run_id for line in lines) == sorted(ids)
        proxy.restore()
        async with asyncio.timeout(30):
            # Bounded poll of the retry: all stored, and then nothing left in the journal.
            while outage_state.writer.pending or journal.read_bytes():  # noqa: ASYNC110
                await asyncio.sleep(0.05)
        async with outage_state.sessions() as session:
            rows = (await session.scalars(select(Message).where(Message.id.in_(ids)))).all()
    assert len(rows) == 10
    assert {(m.status, m.content) for m in rows} == {(MessageStatus.complete, "part one, part two")}


async def test_a_frozen_database_is_503_unavailable_never_a_hung_request(
    database_url: str, proxy: TcpProxy, tmp_path: Path
) -> None:
    """A SIGSTOPped PostgreSQL (or a cut network) answers nothing: the statement timeout, not
    the pool's or the client's, ends the request."""
    parts = urlsplit(database_url)
    via_proxy = urlunsplit(parts._replace(netloc=f"{parts.username}@127.0.0.1:{proxy.port}"))
    settings = make_settings(
        via_proxy, tmp_path, database_statement_timeout_s=1, database_timeout_s=120
    )
    async with build_state(settings) as state, app_client(state) as client:
        owner = await register(client)
        await create_agent(client, owner, "bot")
        proxy.freeze()
        try:
            async with asyncio.timeout(30):  # a hung request would stop here
                for method, path, body in (
                    ("GET", "/v1/agents", None),
                    ("POST", "/v1/agents/bot/chat", {"message": "hi"}),
                ):
                    response = await client.request(method, path, json=body, headers=owner.headers)
                    assert response.status_code == 503, (path, response.text)
                    assert response.json()["error"] == "unavailable"
        finally:
            proxy.thaw()
        assert (await client.get("/v1/agents", headers=owner.headers)).status_code == 200


async def test_after_a_checkpoint_that_failed_mid_outage_the_whole_text_is_written(
    outage_state: AppState, proxy: TcpProxy
) -> None:
    """A checkpoint that fails as the database goes away may still have committed: appending
    its text again could repeat it, so the next checkpoint writes the reply's whole text."""
    async with app_client(outage_state) as client:
        (run,) = await new_turns(client, outage_state, 1)
    reply = Reply()
    outage_state.writer.track(run.run_id, reply)
    reply.text.append("one")
    async with asyncio.timeout(10):
        while (await stored(outage_state.sessions, run.run_id)).content != "one":  # noqa: ASYNC110
            await asyncio.sleep(0.02)  # bounded poll of the writer's own checkpoints
    async with transaction(outage_state.sessions) as session:  # a mark an append would keep
        connection = await session.connection()
        await connection.execute(
            update(Message).where(Message.id == run.run_id).values(content="one|")
        )
    proxy.kill()
    reply.text.append(" two")
    await outage_state.writer.checkpoint()  # fails: the database is unreachable
    proxy.restore()
    async with asyncio.timeout(10):
        while (await stored(outage_state.sessions, run.run_id)).content != "one two":  # noqa: ASYNC110
            await asyncio.sleep(0.02)
    # The checkpoint rewrote the whole text (an append would have kept the mark: "one| two").
    assert (await stored(outage_state.sessions, run.run_id)).content == "one two"
    await outage_state.writer.finish(run, outcome("one two"))
