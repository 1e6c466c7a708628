"""New streams first, end to end: a running stream holds its tokens while another is set up,
and only a request that passed authentication counts as a setup."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from agentstream.auth import tokens
from agentstream.chat import service as chat_service
from agentstream.kit import priority
from agentstream.state import AppState
from tests.factories import Account
from tests.streaming.scripted import Script, parse_sse

MakeAgent = Callable[..., Any]


async def _until(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    """Poll a state of the server under test (same loop) until it holds."""
    async with asyncio.timeout(timeout_s):
        while not condition():  # noqa: ASYNC110 - the server's state, in this loop
            await asyncio.sleep(0.001)


@pytest.fixture
def patient_gate(monkeypatch: pytest.MonkeyPatch) -> priority.SetupFirst:
    """The process's gate, with pauses long enough to observe (and no budget to run out)."""
    gate = priority.setup_first
    monkeypatch.setattr(gate, "max_pause_s", 60.0)
    monkeypatch.setattr(gate, "share", 1e6)
    return gate


async def test_running_stream_waits_for_a_stream_being_set_up(
    client: httpx.AsyncClient,
    owner: Account,
    scripted_agent: MakeAgent,
    patient_gate: priority.SetupFirst,
) -> None:
    script = Script(tokens=["one", " two", " three"])
    slug = await scripted_agent(script)
    with patient_gate.setup():  # another stream is being set up
        response = asyncio.create_task(
            client.post(
                f"/v1/agents/{slug}/chat/stream", json={"message": "hi"}, headers=owner.headers
            )
        )
        await _until(lambda: patient_gate.waiting == 1)  # the run gives way...
        assert script.sent == 1  # ... holding the model's first token back
        assert not response.done()
    done = await asyncio.wait_for(response, timeout=10)
    events, _ = parse_sse(done.text)
    assert "".join(e["content"] for e in events if e["type"] == "text_delta") == "one two three"
    assert patient_gate.setting_up == 0  # the request's own setup ended too


@pytest.fixture
def setups_seen(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The label of every setup that began (``start_run`` marks those that got that far)."""
    seen: list[str] = []
    real_setup = priority.SetupFirst.setup

    def spy(self: priority.SetupFirst) -> Any:
        seen.append("setup")
        return real_setup(self)

    real_start = chat_service.start_run

    async def start_spy(*args: Any, **kwargs: Any) -> Any:
        seen.append(f"start_run with {priority.setup_first.setting_up} setting up")
        return await real_start(*args, **kwargs)

    monkeypatch.setattr(priority.SetupFirst, "setup", spy)
    monkeypatch.setattr("agentstream.streaming.endpoints.start_run", start_spy)
    return seen


async def test_an_authenticated_stream_counts_as_a_setup_until_its_response(
    client: httpx.AsyncClient, owner: Account, scripted_agent: MakeAgent, setups_seen: list[str]
) -> None:
    slug = await scripted_agent(Script())
    path = f"/v1/agents/{slug}/chat/stream/advanced"
    response = await client.post(path, json={"message": "hi"}, headers=owner.headers)
    assert response.status_code == 200
    assert setups_seen == ["setup", "start_run with 1 setting up"]
    assert priority.setup_first.setting_up == 0


@pytest.mark.parametrize(
    "credential",
    ["not-a-jwt", "eyJhbGciOiJIUzI1NiJ9.e30.bad-signature", "as_short", "expired"],
)
async def test_a_request_that_fails_authentication_never_counts_as_a_setup(
    client: httpx.AsyncClient,
    owner: Account,
    scripted_agent: MakeAgent,
    setups_seen: list[str],
    state: AppState,
    credential: str,
) -> None:
    slug = await scripted_agent(Script())
    if credential == "expired":
        credential = tokens.create_access_token(
            state.settings.resolved_jwt_secret, owner.user_id, owner.team_id, ttl_s=-5
        )
    response = await client.post(
        f"/v1/agents/{slug}/chat/stream",
        json={"message": "hi"},
        headers={"Authorization": f"Bearer {credential}"},
    )
    assert response.status_code == 401
    assert setups_seen == []
