"""Applying the configured limits to requests: one helper, keyed by scope."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends
from starlette.requests import HTTPConnection

from agentstream.kit.errors import RateLimited
from agentstream.observability import metrics
from agentstream.ratelimit.limiter import RateDecision
from agentstream.state import AppState, StateDep


async def check(state: AppState, key: str, limit: int) -> RateDecision:
    """Count one hit against ``key`` (``<scope>:<who>``); a limit of 0 disables it."""
    decision = await state.limiter.hit(key, limit, 60.0)
    if not decision.allowed:
        metrics.rate_limited(key.partition(":")[0])
    return decision


async def enforce(state: AppState, key: str, limit: int) -> None:
    """Count one hit and raise ``RateLimited`` (with the standard headers) when over."""
    decision = await check(state, key, limit)
    if not decision.allowed:
        raise RateLimited(headers=decision.headers())


async def count_api_request(state: AppState, team_id: uuid.UUID) -> None:
    """Every authenticated ``/v1`` request (and WebSocket message) counts toward its team."""
    await enforce(state, f"api:{team_id}", state.settings.rate_limit_api)


async def count_chat_message(state: AppState, user_id: uuid.UUID) -> None:
    """Every chat message, whatever its transport, counts toward its user's chat limit."""
    await enforce(state, f"chat:{user_id}", state.settings.rate_limit_chat)


def client_ip(conn: HTTPConnection) -> str:
    """The peer address (a proxy in front should set uvicorn's --forwarded-allow-ips)."""
    return conn.client.host if conn.client else "unknown"


async def limit_auth(conn: HTTPConnection, state: StateDep) -> None:
    """Login and register share a per-IP limit."""
    await enforce(state, f"auth:{client_ip(conn)}", state.settings.rate_limit_auth)


AuthRateLimit = Depends(limit_auth)
AuthLimited = Annotated[None, AuthRateLimit]
