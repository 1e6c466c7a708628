"""SPEC: ``context`` is validated at the edge (JSON-encodable, depth <= 32, <= 16 KiB encoded);
otherwise 422 ``validation_error`` (``invalid_message`` on WebSocket) and nothing is stored."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from agentstream.chat.schemas import MAX_CONTEXT_BYTES, MAX_CONTEXT_DEPTH
from agentstream.models import Conversation, Message
from agentstream.state import AppState
from tests.factories import Account, create_agent
from tests.streaming.wsclient import receive_until_terminal, ws_connect

CHAT_PATHS = ["chat", "chat/stream", "chat/stream/advanced"]


def nested(depth: int) -> dict[str, Any]:
    """A context object nested ``depth`` levels deep (the object itself is level 1)."""
    value: dict[str, Any] = {"leaf": 1}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


def nested_json(depth: int) -> bytes:
    """The same as raw JSON, for depths the stdlib encoder cannot produce."""
    return b'{"a":' * (depth - 1) + b'{"leaf":1}' + b"}" * (depth - 1)


def sized(total: int) -> dict[str, str]:
    """A context whose compact JSON encoding is exactly ``total`` bytes."""
    return {"s": "x" * (total - len(b'{"s":""}'))}


BAD_CONTEXTS: dict[str, bytes] = {
    "int_over_64_bits": b'{"n":18446744073709551616}',
    "depth_33": nested_json(MAX_CONTEXT_DEPTH + 1),
    "depth_300": nested_json(300),  # orjson's own encoder limit is ~255
    "depth_5000": nested_json(5000),  # beyond the stdlib parser's recursion limit
    "over_16_kib": b'{"s":"' + b"x" * MAX_CONTEXT_BYTES + b'"}',
}


async def stored_rows(state: AppState) -> tuple[int, int]:
    async with state.sessions() as session:
        conversations = await session.scalar(select(func.count()).select_from(Conversation))
        messages = await session.scalar(select(func.count()).select_from(Message))
    return conversations or 0, messages or 0


@pytest.fixture
async def bot(client: httpx.AsyncClient, owner: Account) -> str:
    await create_agent(client, owner, "bot")
    return "bot"


@pytest.mark.parametrize("path", CHAT_PATHS)
@pytest.mark.parametrize("name", list(BAD_CONTEXTS))
async def test_bad_context_is_422_and_stores_nothing(
    client: httpx.AsyncClient, state: AppState, owner: Account, bot: str, path: str, name: str
) -> None:
    body = b'{"message":"hi","context":' + BAD_CONTEXTS[name] + b"}"
    response = await client.post(
        f"/v1/agents/{bot}/{path}",
        content=body,
        headers=owner.headers | {"Content-Type": "application/json"},
    )
    assert response.status_code == 422, response.text
    assert response.json()["error"] == "validation_error"
    assert await stored_rows(state) == (0, 0)


@pytest.mark.parametrize(
    "context",
    [nested(MAX_CONTEXT_DEPTH), sized(MAX_CONTEXT_BYTES)],
    ids=["depth_32", "exactly_16_kib"],
)
async def test_context_at_the_limits_is_accepted(
    client: httpx.AsyncClient, owner: Account, bot: str, context: dict[str, Any]
) -> None:
    response = await client.post(
        f"/v1/agents/{bot}/chat", json={"message": "hi", "context": context}, headers=owner.headers
    )
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "complete"


async def test_bad_context_over_websocket_is_invalid_message_and_socket_stays_usable(
    app: FastAPI, state: AppState, owner: Account, bot: str
) -> None:
    async with ws_connect(app, f"/v1/agents/{bot}/ws?token={owner.access_token}") as ws:
        assert (await ws.receive_json())["type"] == "auth_ok"
        for name, context in BAD_CONTEXTS.items():
            if name == "int_over_64_bits":
                continue  # orjson reads the frame's big integer as a float: encodable, accepted
            frame = b'{"type":"message","content":"hi","context":' + context + b"}"
            await ws.send_text(frame.decode())
            event = await ws.receive_json()
            assert (event["type"], event.get("error_code")) == ("error", "invalid_message"), name
        assert await stored_rows(state) == (0, 0)
        await ws.send_json({"type": "message", "content": "hi", "context": nested(32)})
        events = await receive_until_terminal(ws)
        assert events[-1]["type"] == "done"
        assert events[-1]["status"] == "complete"
