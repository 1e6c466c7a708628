"""No request dependency runs on a thread: FastAPI hands a plain-function dependency to its
thread pool, a hand-off per request (and a wait for the GIL) that a flood of requests turns
into a tax on every stream of the worker."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi.dependencies import utils

from tests.factories import register


async def test_no_dependency_runs_on_a_thread(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    account = await register(client)
    on_threads: list[str] = []
    original = utils.run_in_threadpool

    async def recording(func: Any, *args: Any, **kwargs: Any) -> Any:
        on_threads.append(getattr(func, "__qualname__", repr(func)))
        return await original(func, *args, **kwargs)

    monkeypatch.setattr(utils, "run_in_threadpool", recording)
    bad = {"Authorization": "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.bad"}
    responses = [
        await client.get("/v1/conversations?limit=5", headers=account.headers),
        await client.get("/v1/agents", headers=account.headers),
        await client.post("/v1/agents/demo/chat", json={"message": "hi"}, headers=bad),
        await client.get("/health"),
    ]
    assert [r.status_code for r in responses] == [200, 200, 401, 200]
    assert on_threads == []
