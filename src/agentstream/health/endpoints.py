"""``/health`` (process up) and ``/ready`` (database reachable, Redis state)."""

from __future__ import annotations

import os
from typing import Literal

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy import text

from agentstream.kit.redis import RedisGuard, RedisUnavailable
from agentstream.state import StateDep

router = APIRouter(tags=["health"])


class Health(BaseModel):
    status: Literal["ok"] = "ok"
    pid: int = Field(default_factory=os.getpid, description="The worker process answering.")


class Readiness(BaseModel):
    status: Literal["ok", "degraded", "unavailable"]
    database: Literal["ok", "down"]
    redis: Literal["ok", "down", "disabled"]


@router.get("/health", response_model=Health)
async def health() -> Health:
    """The process is up."""
    return Health()


async def _redis_state(guard: RedisGuard | None) -> Literal["ok", "down", "disabled"]:
    # Through the guard: while its breaker is open this answers "down" without waiting.
    if guard is None:
        return "disabled"
    try:
        await guard.run(lambda redis: redis.ping())
    except RedisUnavailable:
        return "down"
    return "ok"


@router.get("/ready", response_model=Readiness, responses={503: {"model": Readiness}})
async def ready(state: StateDep) -> JSONResponse:
    """Ready when the database answers; Redis being down degrades but does not fail it."""
    database: Literal["ok", "down"] = "ok"
    try:
        async with state.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception:
        database = "down"
    redis = await _redis_state(state.redis_guard)
    status: Literal["ok", "degraded", "unavailable"] = (
        "unavailable" if database == "down" else "degraded" if redis == "down" else "ok"
    )
    body = Readiness(status=status, database=database, redis=redis)
    return JSONResponse(body.model_dump(), status_code=503 if database == "down" else 200)
