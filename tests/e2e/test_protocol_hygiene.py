"""Real uvicorn: malformed WebSocket input closes cleanly and leaves no traceback in the logs."""

from __future__ import annotations

import json

import httpx
import pytest
import websockets
from websockets.exceptions import ConnectionClosed

from tests.e2e.server import ServerProcess
from tests.factories import create_agent, register

pytestmark = pytest.mark.e2e


async def test_invalid_utf8_text_frame_closes_1007_without_a_traceback(
    server: ServerProcess, http: httpx.AsyncClient
) -> None:
    owner = await register(http)
    await create_agent(http, owner, "utf8")
    url = f"{server.ws_url}/v1/agents/utf8/ws?token={owner.access_token}"
    log_start = len(server.log())  # the server (and its log) is shared by the session
    async with websockets.connect(url) as ws:
        assert json.loads(await ws.recv())["type"] == "auth_ok"
        # text=True sends the bytes as a text frame unchecked: what a broken client does.
        await ws.send(b'{"type":"ping","x":"\xff\xfe"}', text=True)
        with pytest.raises(ConnectionClosed) as info:
            await ws.recv()
    assert info.value.rcvd is not None
    assert info.value.rcvd.code == 1007
    # The server is fine and says nothing alarming about a client's bad bytes.
    assert (await http.get("/health")).status_code == 200
    # uvicorn's own handler logs "Invalid UTF-8 sequence" with the UnicodeDecodeError.
    new_lines = server.log()[log_start:]
    assert "UnicodeDecodeError" not in new_lines
    assert "Invalid UTF-8" not in new_lines
