"""Big data and bad tokens (issue 21): agentstream on an empty database against the same
server on a database holding 200k memories of other teams and 300k usage rows, and a
streaming client's pace with and without a flood of bad-token requests. Same run, same
machine, each configuration (SQLite; PostgreSQL + Redis) on fresh databases.

- *Chat under load*: 10 SSE clients stream back to back (demo model, 100 tokens at 20 ms)
  while a probe asks ``GET /health`` every 10 ms: the chat's first event, and how long a
  request waits for the worker's event loop (the probe's latency; SQLite statements run on
  the loop's thread, so a slow one shows up here).
- *Usage*: ``GET /v1/usage`` (the default 30 days) of the team that owns the 300k rows.
- *Bad-token flood*: one client streams 100-token replies one after the other; the gaps
  between its events alone, then with 300 bad-token chat requests always in flight (a
  second load-generator process).
"""

from __future__ import annotations

import asyncio
import random
import secrets
import sys
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import insert, text

from agentstream.db import create_engine
from agentstream.memory.demo import demo_vector
from agentstream.memory.embedder import DEMO_EMBEDDING_MODEL
from agentstream.models import Memory, MessageStatus, Team, UsageLog
from bench import scenarios as sc
from bench.procs import IdleSockets, run_loadgen

MEMORIES = 200_000
USAGE_ROWS = 300_000
OTHER_TEAMS = 20
CLIENTS = 10
DELAY_MS = 20.0
_WORDS = [
    "long",
    "story",
    "tell",
    "short",
    "tale",
    "river",
    "castle",
    "dragon",
    "quiet",
    "morning",
    "letter",
    "garden",
]


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _prepare(server: sc.Server, accounts: int) -> tuple[list[str | None], dict[str, Any]]:
    """Accounts with the 100-token agent and one memory each (so every chat searches its
    memories: a caller without any skips the search); the first account's ids."""
    tokens = sc.prepare_agentstream(server, accounts)
    first: dict[str, Any] = {}
    with httpx.Client(base_url=server.url, timeout=60) as http:
        for index, token in enumerate(tokens):
            headers = {"Authorization": f"Bearer {token}"}
            memory = {"content": "Likes a long story before bed", "importance": 5}
            http.post("/v1/memories", json=memory, headers=headers).raise_for_status()
            if index == 0:
                me = http.get("/v1/auth/me", headers=headers).json()
                agent = http.get("/v1/agents/bench", headers=headers).json()
                first = {"user": me["id"], "team": me["teams"][0]["id"], "agent": agent["id"]}
    return tokens, first


async def _seed(url: str, owner: dict[str, Any], memories: int, usage_rows: int) -> None:
    """Other teams' memories (words the chat prompt has, with their demo vectors) and the
    first team's usage rows, spread over 90 days, inserted straight into the database in
    batches."""
    engine = create_engine(url)
    randomly = random.Random(21)
    now = datetime.now(UTC)
    try:
        teams = [
            {"id": uuid.uuid4(), "name": f"Other {n}", "slug": f"other-{secrets.token_hex(6)}"}
            for n in range(OTHER_TEAMS)
        ]
        async with engine.begin() as conn:
            await conn.execute(insert(Team), teams)
        vectors: dict[frozenset[str], list[float]] = {}
        for start in range(0, memories, 10_000):
            batch = []
            for n in range(start, min(memories, start + 10_000)):
                words = randomly.sample(_WORDS, 5)
                # Embedded, as a live server's memories are (the demo model; the row's number
                # left out of the vector, so 792 word sets make every vector).
                key = frozenset(words)
                vector = vectors.get(key) or vectors.setdefault(key, demo_vector(" ".join(words)))
                batch.append(
                    {
                        "team_id": teams[n % OTHER_TEAMS]["id"],
                        "content": " ".join(words) + f" #{n}",
                        "importance": 5,
                        "embedding": vector,
                        "embedding_model": DEMO_EMBEDDING_MODEL,
                        "embedding_dims": len(vector),
                    }
                )
            async with engine.begin() as conn:
                await conn.execute(insert(Memory), batch)
        for start in range(0, usage_rows, 10_000):
            batch = [
                {
                    "team_id": uuid.UUID(owner["team"]),
                    "user_id": uuid.UUID(owner["user"]),
                    "agent_id": uuid.UUID(owner["agent"]),
                    "model": "demo",
                    "input_tokens": 40,
                    "output_tokens": 100,
                    "duration_ms": 2000,
                    "status": MessageStatus.complete,
                    "created_at": now - timedelta(seconds=randomly.uniform(0, 90 * 86400)),
                }
                for _ in range(start, min(usage_rows, start + 10_000))
            ]
            async with engine.begin() as conn:
                await conn.execute(insert(UsageLog), batch)
        if engine.dialect.name == "postgresql":
            # What autovacuum does within a minute of a bulk load: the planner's statistics
            # of the new rows (the measurement starts seconds after the load).
            async with engine.begin() as conn:
                await conn.execute(text("ANALYZE"))
    finally:
        await engine.dispose()


def _measure(target: sc.Target, profile: sc.Profile) -> dict[str, Any]:
    run_loadgen(target.job("sequential", requests=5))  # warm up lazy imports and caches
    chat = run_loadgen(
        target.job(
            "probed", concurrency=CLIENTS, duration_s=max(profile.throughput_s, 5.0), probe_s=0.01
        )
    )
    usage = run_loadgen(target.job("timed_get", get_path="/v1/usage", requests=30))
    return {"chat": chat, "usage": usage}


def _flood(target: sc.Target, streams: int) -> dict[str, Any]:
    alone = run_loadgen(target.job("gaps", streams=streams))
    flood = IdleSockets(target.job("flood", in_flight=300))
    try:
        flood.wait_ready()
        flooded = run_loadgen(target.job("gaps", streams=streams))
    finally:
        flood.close()
    return {"alone": alone, "flooded": flooded}


def run(
    label: str,
    fresh: Callable[[str], tuple[dict[str, str], Callable[[], None]]],
    profile: sc.Profile,
    results: dict[str, Any],
    *,
    memories: int = MEMORIES,
    usage_rows: int = USAGE_ROWS,
) -> None:
    """Both databases of one configuration; ``fresh(name)`` gives a new database's server
    environment and a function that drops it."""
    for size in ("empty", "big"):
        env, drop = fresh(size)
        server = sc.agentstream_server(f"agentstream-bigdata-{label}-{size}", DELAY_MS, env)
        try:
            server.start("/health")
            tokens, owner = _prepare(server, CLIENTS)
            if size == "big":
                _log(f"[{label}] big data: seeding {memories:,} memories, {usage_rows:,} usage")
                asyncio.run(_seed(env["AGENTSTREAM_DATABASE_URL"], owner, memories, usage_rows))
            target = sc.agentstream_target(server, tokens)
            _log(f"[{label}] big data: {size} database")
            results[f"bigdata:{size}:{label}"] = _measure(target, profile)
            if size == "empty":
                _log(f"[{label}] bad-token flood")
                results[f"flood:{label}"] = _flood(
                    target, streams=5 if profile.sequential > 5 else 2
                )
        finally:
            server.stop()
            drop()
