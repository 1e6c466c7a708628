"""A request that cannot get a database connection in time is a 503, not a 500."""

from __future__ import annotations

import httpx
import pytest

from agentstream.state import AppState


@pytest.mark.parametrize(
    "settings_overrides",
    [{"database_pool_size": 1, "database_max_overflow": 0, "database_timeout_s": 0.2}],
)
async def test_pool_exhaustion_is_503_unavailable(
    client: httpx.AsyncClient, state: AppState
) -> None:
    async with state.engine.connect() as held:  # the only connection of the pool
        await held.exec_driver_sql("SELECT 1")
        response = await client.post(
            "/v1/auth/login", json={"email": "a@example.com", "password": "whatever"}
        )
    assert response.status_code == 503
    assert response.json()["error"] == "unavailable"
    assert response.headers["Retry-After"] == "1"
    # Once the connection is back, the server answers normally.
    again = await client.post(
        "/v1/auth/login", json={"email": "a@example.com", "password": "whatever"}
    )
    assert again.status_code == 401
