"""Checkpoints of many live replies: the CPU one costs the worker (its event loop), in process.

``TurnWriter.checkpoint()`` of ``REPLIES`` streaming replies of ``REPLY_BYTES`` each, every one
of which gained ``NEW_BYTES`` since the last checkpoint (about a second of tokens), on SQLite
and PostgreSQL, against a transaction on the loop that rewrites each reply's whole text (how
checkpoints were written before they appended and, on SQLite, left the loop), in the same run.
``loop_cpu`` is the CPU of the event loop's thread (``thread_time``): what every stream of the
worker waits for; ``cpu`` is the whole process's (SQLite's work on its driver thread included;
PostgreSQL's own work is in another process and not counted).
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import select

from agentstream.app import build_state
from agentstream.bootstrap import ensure_demo
from agentstream.chat.translate import Reply
from agentstream.conversations.turns import Checkpoint, RunIdentity, save_checkpoints, start_turn
from agentstream.db import transaction
from agentstream.migrations import upgrade
from agentstream.models import Agent, Membership
from agentstream.settings import Settings
from agentstream.state import AppState

REPLIES = 1000
REPLY_BYTES = 2048
NEW_BYTES = 100  # ~20 tokens: a second of a fast model
PIECE = "word "  # 5 bytes a token
ROUNDS = 5


async def _turns(state: AppState) -> list[RunIdentity]:
    """``REPLIES`` turns of the demo user with the demo agent (their rows written)."""
    await ensure_demo(state)
    async with state.sessions() as session:
        agent = await session.scalar(select(Agent).limit(1))
        member = await session.scalar(select(Membership).limit(1))
    assert agent is not None
    assert member is not None
    turns = []
    for _ in range(REPLIES):
        async with transaction(state.sessions) as session:
            identity, _ = await start_turn(session, member, agent, "hi", None, "bench")
        turns.append(identity)
    return turns


def _grow(replies: list[Reply], size: int) -> None:
    for reply in replies:
        reply.text.extend([PIECE] * (size // len(PIECE)))


async def _rewrite_all(state: AppState, runs: list[RunIdentity], replies: list[Reply]) -> None:
    """The whole text of every reply: what each checkpoint wrote before it appended."""
    checkpoints = [
        Checkpoint(run.run_id, "".join(reply.text), rewrite=True)
        for run, reply in zip(runs, replies, strict=True)
    ]
    async with transaction(state.sessions) as session:
        await save_checkpoints(await session.connection(), checkpoints)


async def _measure(settings: Settings) -> dict[str, Any]:
    async with build_state(settings) as state:
        runs = await _turns(state)
        replies = [Reply() for _ in runs]
        for run, reply in zip(runs, replies, strict=True):
            state.writer.track(run.run_id, reply)
        _grow(replies, REPLY_BYTES)
        await state.writer.checkpoint()  # the replies so far are stored
        samples: dict[str, list[float]] = {}
        for _ in range(ROUNDS):
            for mode in ("checkpoint", "rewrite"):
                _grow(replies, NEW_BYTES)
                wall, cpu, loop = time.perf_counter(), time.process_time(), time.thread_time()
                if mode == "checkpoint":
                    await state.writer.checkpoint()
                else:
                    await _rewrite_all(state, runs, replies)
                for kind, value in (
                    ("loop_cpu", time.thread_time() - loop),
                    ("cpu", time.process_time() - cpu),
                    ("wall", time.perf_counter() - wall),
                ):
                    samples.setdefault(f"{mode}_{kind}_s", []).append(value)
    return {key: statistics.median(values) for key, values in samples.items()}


def run(postgres_url: str | None, work: Path) -> dict[str, Any]:
    """Medians per backend: SQLite (a new file) and, if given, PostgreSQL (a migrated, empty
    scratch database)."""
    out: dict[str, Any] = {"replies": REPLIES, "reply_bytes": REPLY_BYTES, "new_bytes": NEW_BYTES}
    for name in ("sqlite", "postgres"):
        with tempfile.TemporaryDirectory(dir=work) as data:
            url = postgres_url if name == "postgres" else f"sqlite+aiosqlite:///{data}/bench.db"
            if url is None:
                continue
            upgrade(url)
            settings = Settings(
                database_url=url,
                data_dir=Path(data),
                jwt_secret="bench-" + "x" * 32,
                checkpoint_s=3600,  # measured by hand, not by the writer's own loop
                memory_extraction=False,
            )
            out[name] = asyncio.run(_measure(settings))
    return out


def section(results: dict[str, Any]) -> str:
    """The report's section (empty when not measured)."""
    measured = results.get("checkpoints")
    if not isinstance(measured, dict):
        return ""
    rows = []
    for name, label in (("sqlite", "SQLite"), ("postgres", "PostgreSQL")):
        r = measured.get(name)
        if not isinstance(r, dict):
            continue
        for mode, what in (
            ("checkpoint", "`TurnWriter.checkpoint()` (appends)"),
            ("rewrite", "whole texts rewritten, on the loop"),
        ):
            rows.append(
                f"| {label} | {what} | {r[f'{mode}_loop_cpu_s'] * 1000:.1f} ms "
                f"| {r[f'{mode}_cpu_s'] * 1000:.1f} ms | {r[f'{mode}_wall_s'] * 1000:.0f} ms |"
            )
    return f"""## Checkpoints

One checkpoint of {measured["replies"]:,} streaming replies of {measured["reply_bytes"]:,} bytes
that each gained {measured["new_bytes"]} bytes since the last one (`bench/checkpoints.py`, in
process, medians of {ROUNDS}). The loop's CPU is what every stream of the worker waits for; the
rewrite row is how checkpoints were written before they appended and, on SQLite, left the loop.

| database | checkpoint | loop CPU | process CPU | wall |
|---|---|---|---|---|
{chr(10).join(rows)}
"""
