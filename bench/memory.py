"""Memory retrieval (issue 18): words only against hybrid, demo embedder and a local endpoint.

In process, one database at a time: 200k memories of 2,000 other teams, then the caller's
own grown to each size. Each query is timed whole: for hybrid, the query's embedding (outside
any transaction, as the chat does) plus the search and ranking in one transaction; CPU is the
process's (``time.process_time``), which the database server's work is not part of. Then the
chat's first event (advanced SSE, in-process client) with the caller at the smallest size,
words only (``AGENTSTREAM_EMBEDDING_MODEL=none``) against hybrid (demo).
"""

from __future__ import annotations

import asyncio
import random
import re
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import insert, text, update

from agentstream.app import build_state, create_app
from agentstream.db import transaction
from agentstream.memory.demo import demo_vector
from agentstream.memory.semantic import SemanticMemory
from agentstream.memory.service import VectorSearch, retrieve
from agentstream.migrations import upgrade
from agentstream.models import Memory, Team
from agentstream.settings import Settings
from agentstream.state import AppState
from bench.stats import pct

_WORDS = re.findall(
    r"\w+",
    "cat tea garden rust python lisbon berlin coffee music guitar bicycle marathon recipe "
    "holiday project deadline budget meeting dentist birthday sister brother football chess "
    "novel poetry mountain river ocean train flight hotel invoice salary language spanish",
)
QUERIES = ["What is my cat's name?", "Which language do I like?", "When is the dentist?"]
_CHUNK = 5000


def _texts(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choices(_WORDS, k=8)) + f" {i}" for i in range(count)]


def _rows(
    team: uuid.UUID, user: uuid.UUID | None, count: int, model: str, pool: list[Any]
) -> list[dict[str, Any]]:
    return [
        {
            "id": uuid.uuid4(),
            "team_id": team,
            "user_id": user,
            "content": pool[i % len(pool)][0],
            "importance": 5,
            "embedding": pool[i % len(pool)][1],
            "embedding_model": model,
            "embedding_dims": len(pool[0][1]),
        }
        for i in range(count)
    ]


async def _insert(state: AppState, rows: list[dict[str, Any]]) -> None:
    for start in range(0, len(rows), _CHUNK):
        async with transaction(state.sessions) as session:
            await session.execute(insert(Memory), rows[start : start + _CHUNK])


async def _time(queries: int, call: Callable[[str], Any]) -> dict[str, float | None]:
    walls: list[float] = []
    cpu_start = time.process_time()
    for i in range(queries):
        started = time.perf_counter()
        await call(QUERIES[i % len(QUERIES)])
        walls.append((time.perf_counter() - started) * 1000)
    return {
        "p50_ms": pct(walls, 50),
        "p99_ms": pct(walls, 99),
        "cpu_ms": (time.process_time() - cpu_start) * 1000 / queries,
    }


async def _retrieval(
    state: AppState, caller: Any, agent_id: uuid.UUID, semantic: SemanticMemory | None
) -> Callable[[str], Any]:
    async def call(query: str) -> None:
        vector: VectorSearch | None = None
        if semantic is not None:
            vector = await semantic.vector_search(query)
            assert vector is not None, "the embedder failed"
        async with transaction(state.sessions) as session:
            await retrieve(session, caller, agent_id, query, 5, vector=vector)

    return call


async def _first_events(settings: Settings, account: dict[str, Any], requests: int) -> list[float]:
    async with build_state(settings) as state:
        app = create_app(settings)
        app.state.agentstream = state
        transport = httpx.ASGITransport(app=app)
        times: list[float] = []
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            for i in range(requests):
                started = time.perf_counter()
                async with client.stream(
                    "POST",
                    "/v1/agents/bench/chat/stream/advanced",
                    json={"message": QUERIES[i % len(QUERIES)]},
                    headers=account,
                ) as response:
                    async for line in response.aiter_lines():
                        if line.startswith("data:"):
                            times.append((time.perf_counter() - started) * 1000)
                            break
        return times


async def _account(settings: Settings) -> tuple[dict[str, str], uuid.UUID, uuid.UUID, uuid.UUID]:
    async with build_state(settings) as state:
        app = create_app(settings)
        app.state.agentstream = state
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            body = (
                await client.post(
                    "/v1/auth/register",
                    json={"email": f"b{uuid.uuid4().hex[:8]}@x.io", "password": "p" * 12},
                )
            ).json()
            headers = {"Authorization": f"Bearer {body['access_token']}"}
            agent = await client.post(
                "/v1/agents",
                json={"slug": "bench", "name": "Bench", "model": "demo"},
                headers=headers,
            )
        team, user = uuid.UUID(body["team"]["id"]), uuid.UUID(body["user"]["id"])
        return headers, team, user, uuid.UUID(agent.json()["id"])


async def _run(
    url: str, data: Path, endpoint: str | None, sizes: list[int], others: int
) -> dict[str, Any]:
    base = Settings(
        database_url=url,
        data_dir=data,
        jwt_secret="bench-" + "x" * 40,
        demo_token_delay_ms=0,
        rate_limit_chat=0,
        rate_limit_api=0,
        rate_limit_auth=0,
        max_active_runs_per_user=0,
        memory_extraction=False,
        embedding_poll_s=3600.0,  # the rows are inserted with their vectors
        openai_base_url=endpoint,
        openai_api_key="bench",
    )
    headers, team, user, agent_id = await _account(base)
    pool = [(t, demo_vector(t)) for t in _texts(2000, 1)]
    out: dict[str, Any] = {"sizes": {}}
    async with build_state(base) as state:
        started = time.perf_counter()
        ids = [uuid.uuid4() for _ in range(2000)]
        teams = [{"id": i, "name": "t", "slug": i.hex} for i in ids]
        async with transaction(state.sessions) as session:
            await session.execute(insert(Team), teams)
        others_rows = [r for i in ids for r in _rows(i, None, others // 2000, "demo", pool)]
        await _insert(state, others_rows)
        out["insert_s"] = time.perf_counter() - started
        caller = type("Caller", (), {"team_id": team, "user_id": user})()
        endpoint_semantic = None
        if endpoint:
            endpoint_settings = base.model_copy(update={"embedding_model": "openai:bench-embed"})
            endpoint_semantic = SemanticMemory(endpoint_settings, state.engine, state.sessions)
        have = 0
        for size in sizes:
            await _insert(state, _rows(team, user, size - have, "demo", pool))
            have = size
            if state.engine.dialect.name == "postgresql":
                async with state.engine.connect() as conn:
                    await conn.execute(text("ANALYZE memories"))
                    await conn.commit()
            queries = 60 if size >= 100_000 else 200
            row: dict[str, Any] = {
                "words": await _time(queries, await _retrieval(state, caller, agent_id, None)),
                "hybrid_demo": await _time(
                    queries, await _retrieval(state, caller, agent_id, state.memory)
                ),
            }
            if endpoint_semantic is not None:
                await _tag(state, team, "openai:bench-embed")
                call = await _retrieval(state, caller, agent_id, endpoint_semantic)
                row["hybrid_endpoint"] = await _time(queries, call)
                await _tag(state, team, "demo")
            out["sizes"][str(size)] = row
            if size == sizes[0]:
                out["first_event"] = await _first_event_pair(base, headers, size)
    return out


async def _first_event_pair(base: Settings, headers: dict[str, str], size: int) -> dict[str, Any]:
    """The chat's first event with the caller at ``size`` memories: words only, then hybrid
    (demo embedder), alternating rounds so the machine's load is shared fairly."""
    words: list[float] = []
    hybrid: list[float] = []
    off = base.model_copy(update={"embedding_model": "none"})
    for _ in range(2):
        words += await _first_events(off, headers, 100)
        hybrid += await _first_events(base, headers, 100)
    return {
        "caller_memories": size,
        "words_p50_ms": pct(words, 50),
        "words_p99_ms": pct(words, 99),
        "hybrid_p50_ms": pct(hybrid, 50),
        "hybrid_p99_ms": pct(hybrid, 99),
    }


async def _tag(state: AppState, team: uuid.UUID, model: str) -> None:
    """The caller's vectors as if made by ``model`` (the bench endpoint serves demo vectors)."""
    async with transaction(state.sessions) as session:
        await session.execute(
            update(Memory).where(Memory.team_id == team).values(embedding_model=model)
        )


def run(
    databases: dict[str, str], work: Path, endpoint: str | None, *, tiny: bool = False
) -> dict[str, Any]:
    """Every database's numbers; ``databases`` maps a label to a fresh database URL."""
    sizes = [100, 1000] if tiny else [1000, 10_000, 100_000]
    others = 2000 if tiny else 200_000
    results: dict[str, Any] = {}
    for label, url in databases.items():
        upgrade(url)
        data = work / f"memory-{label}-{uuid.uuid4().hex[:6]}"
        results[label] = asyncio.run(_run(url, data, endpoint, sizes, others))
    return results
