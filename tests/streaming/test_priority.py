"""New streams first, end to end: a running stream holds its tokens while another is set up."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from agentstream.auth import deps as auth_deps
from agentstream.kit import priority
from tests.factories import Account
from tests.streaming.scripted import Script, parse_sse

MakeAgent = Callable[..., Any]


async def test_running_stream_waits_for_a_stream_being_set_up(
    client: httpx.AsyncClient,
    owner: Account,
    scripted_agent: MakeAgent,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(priority.setup_first, "_max_pause_s", 60.0)
    script = Script(tokens=["one", " two", " three"])
    slug = await scripted_agent(script)
    with priority.setup_first.setup():  # another stream is being set up
        response = asyncio.create_task(
            client.post(
                f"/v1/agents/{slug}/chat/stream", json={"message": "hi"}, headers=owner.headers
            )
        )
        await asyncio.wait_for(script.wait_for_calls(1), timeout=10)
        await asyncio.sleep(0.05)  # ample time for tokens that were not held back
        assert script.sent == 1  # the model gave its first token; the run holds it back
        assert not response.done()
    done = await asyncio.wait_for(response, timeout=10)
    events, _ = parse_sse(done.text)
    assert "".join(e["content"] for e in events if e["type"] == "text_delta") == "one two three"
    assert priority.setup_first.setting_up == 0  # the request's own setup ended too


async def test_a_new_streams_authentication_is_part_of_its_setup(
    client: httpx.AsyncClient,
    owner: Account,
    scripted_agent: MakeAgent,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    slug = await scripted_agent(Script())
    seen: list[int] = []
    real = auth_deps.principal_for

    async def spy(*args: Any, **kwargs: Any) -> Any:
        seen.append(priority.setup_first.setting_up)
        return await real(*args, **kwargs)

    monkeypatch.setattr(auth_deps, "principal_for", spy)
    path = f"/v1/agents/{slug}/chat/stream/advanced"
    response = await client.post(path, json={"message": "hi"}, headers=owner.headers)
    assert response.status_code == 200
    assert seen == [1]
    assert priority.setup_first.setting_up == 0
