"""agentstream against the honest peer (issue 12): pydantic-ai served straight from Starlette
(``bench/peer.py``: ``Agent.iter`` per request, and pydantic-ai's own ``VercelAIAdapter``),
with the bare reference for scale. Every side streams the demo model's full, uncapped "long
story" (492 tokens).

The same comparison runs on the provider path (issue 19): both sides stream the same story
from the bench's OpenAI-compatible upstream (``bench/upstream.py``) through an ``openai:``
model, the peer with pydantic-ai's stock ``OpenAIChatModel``. Its results are keyed
``provider:`` (the demo path's ``peers:``); the agentstream servers are the same ones.

The servers of one comparison are up side by side and measured in alternating rounds, so a
burst of load from elsewhere on the machine hits every side alike; a row is the median of
the rounds. Each agentstream server has a database of its own, and after its scenarios we
count its stored assistant messages against the streams it served (goal 5).
"""

from __future__ import annotations

import asyncio
import sqlite3
import statistics
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from bench import scenarios as sc
from bench.peer import VERCEL_BODY
from bench.procs import Server, run_loadgen
from bench.stats import pct

STORY = {"slug": "story", "name": "Story", "model": "demo"}  # no max_tokens: the whole story
STORY_PATH = "/v1/agents/story/chat/stream/advanced"
STORY_TOKENS = 492
SHORT_TOKENS = 100  # the second reply length of the per-token CPU slope
COMPLETE = '"status":"complete"'
CLIENTS = (1, 10)
DelayedServers = Callable[[float], dict[str, Server]]
PROVIDER_HELD_TOKENS = 200  # issue 19: held streams of 200 tokens


@dataclass(frozen=True)
class ModelPath:
    """Which path a comparison measures: the demo model, or ``openai:`` through the upstream."""

    key: str  # the results' prefix
    peer: str  # the peer server's name in the servers dict
    upstream_model: str | None = None  # the upstream's model name (provider path)
    held_tokens: int | None = None  # held streams' length (None: the whole story)

    def model(self, delay_ms: float) -> str:
        if self.upstream_model is None:
            return "demo"  # paced by the server's AGENTSTREAM_DEMO_TOKEN_DELAY_MS
        return f"openai:{self.upstream_model}" + (f"-{delay_ms:g}ms" if delay_ms else "")

    def agents(self, delay_ms: float) -> list[dict[str, Any]]:
        """The whole story, and the same capped for the CPU slope and the held streams."""
        model = self.model(delay_ms)
        agents = [{**STORY, "model": model}]
        if self.upstream_model is not None:
            for cap in (SHORT_TOKENS, self.held_tokens):
                agents.append(
                    {
                        "slug": f"story{cap}",
                        "name": "Story",
                        "model": model,
                        "settings": {"max_tokens": cap},
                    }
                )
        return agents

    def agentstream_paths(self, held: bool) -> tuple[str, str]:
        """(long path, short path) of an agentstream side."""
        if self.upstream_model is None:
            return STORY_PATH, sc.ADVANCED
        long = f"/v1/agents/story{self.held_tokens}/chat/stream/advanced" if held else STORY_PATH
        return long, f"/v1/agents/story{SHORT_TOKENS}/chat/stream/advanced"


DEMO_PATH = ModelPath("peers", "peer")
PROVIDER_PATH = ModelPath("provider", "peer-openai", "story", PROVIDER_HELD_TOKENS)


@dataclass
class Side:
    """One contestant: a server, the endpoint it streams from, and what it has served."""

    name: str
    server: Server
    path: str
    body: dict[str, Any] = field(default_factory=lambda: dict(sc.BODY))
    tokens: list[str | None] = field(default_factory=lambda: [None])
    done: str = ""  # terminal frame marker; the loadgen's default is ``"type":"done"``
    database: str = ""  # SQLAlchemy URL of an agentstream side's own database
    short_path: str = ""  # the same reply capped at SHORT_TOKENS
    sent: int = 0
    ok: int = 0

    def job(self, kind: str, *, short: bool = False, **extra: Any) -> dict[str, Any]:
        return {
            "kind": kind,
            "url": self.server.url,
            "path": self.short_path if short else self.path,
            "body": self.body,
            "tokens": self.tokens,
            "done": self.done,
            "complete": COMPLETE if self.database else "",
            **extra,
        }

    def run(self, kind: str, *, short: bool = False, **extra: Any) -> dict[str, Any]:
        """One load-generator job, counted towards what this side has served (held jobs also
        sample the server's peak RSS)."""
        before, rss_before = self.server.cpu_s(), self.server.rss_mb()
        peak = [rss_before]
        stop = threading.Event()

        def sample() -> None:
            while not stop.wait(0.2):
                peak[0] = max(peak[0], self.server.rss_mb())

        sampler = threading.Thread(target=sample, daemon=True)
        if kind == "held":
            sampler.start()
        try:
            result = run_loadgen(self.job(kind, short=short, **extra), timeout_s=900)
        finally:
            stop.set()
        result["server_cpu_s"] = self.server.cpu_s() - before
        if kind == "held":
            sampler.join()
            # The measure (RSS / concurrent streams): a growth over the RSS before
            # would read 0 where earlier scenarios already took the memory from the system.
            result["rss_peak_mb"] = peak[0]
            result["rss_per_stream_kib"] = peak[0] * 1024 / extra["streams"]
        self.sent += result["ok"] + result["failed"]
        self.ok += result["ok"]
        return result


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _median(rounds: list[dict[str, Any]], f: Callable[[dict[str, Any]], float | None]) -> float:
    values = [v for v in (f(r) for r in rounds) if v is not None]
    return statistics.median(values) if values else float("nan")


def _summary(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians over the rounds, plus the per-round values a reader may want."""
    return {
        "rounds": len(rounds),
        "ok": sum(r["ok"] for r in rounds),
        "failed": sum(r["failed"] for r in rounds),
        "errors": sorted({e for r in rounds for e in r["errors"]}),
        "streams_per_s": _median(rounds, lambda r: r["ok"] / r["elapsed_s"]),
        "first_p50_s": _median(rounds, lambda r: pct(r["first_event_s"], 50)),
        "first_p99_s": _median(rounds, lambda r: pct(r["first_event_s"], 99)),
        "done_p50_s": _median(rounds, lambda r: pct(r["done_s"], 50)),
        "cpu_per_stream_s": _median(rounds, lambda r: r["server_cpu_s"] / max(r["ok"], 1)),
        "per_round_streams_per_s": [r["ok"] / r["elapsed_s"] for r in rounds],
        **{
            f"gap_{q}_s": _median(rounds, lambda r, q=q: (r.get("gap_s") or {}).get(q))
            for q in ("p50", "p99", "p99.9")
        },
        "rss_peak_mb": _median(rounds, lambda r: r.get("rss_peak_mb")),
        "rss_per_stream_kib": _median(rounds, lambda r: r.get("rss_per_stream_kib")),
    }


def stored(database: str) -> dict[str, int]:
    """Assistant messages in an agentstream database: all of them and those ``complete``."""
    query = (
        "SELECT count(*), count(*) FILTER (WHERE status = 'complete') "
        "FROM messages WHERE role = 'assistant'"
    )
    if database.startswith("sqlite"):
        with sqlite3.connect(database.split(":///", 1)[1]) as conn:
            total, complete = conn.execute(query).fetchone()
    else:

        async def count() -> tuple[int, int]:
            conn = await asyncpg.connect(database.replace("+asyncpg", ""), timeout=10)
            try:
                row = await conn.fetchrow(query)
                assert row is not None
                return int(row[0]), int(row[1])
            finally:
                await conn.close()

        total, complete = asyncio.run(count())
    return {"assistant_messages": int(total), "complete": int(complete)}


def _agentstream_side(
    name: str, server: Server, database: str, path: ModelPath, delay_ms: float
) -> Side:
    tokens = sc.prepare_agentstream(server, 10, *path.agents(delay_ms))
    long, short = path.agentstream_paths(held=bool(delay_ms))
    return Side(name, server, long, tokens=tokens, database=database, short_path=short)


def _sides(
    servers: dict[str, Server],
    databases: dict[str, str],
    path: ModelPath = DEMO_PATH,
    delay_ms: float = 0,
) -> dict[str, Side]:
    sides: dict[str, Side] = {}
    if "reference" in servers and path is DEMO_PATH:
        sides["reference"] = Side("reference", servers["reference"], "/stream")
    peer = servers[path.peer]
    held = f"/stream?max_tokens={path.held_tokens}" if path.held_tokens and delay_ms else "/stream"
    sides["peer"] = Side("peer", peer, held, short_path=f"/stream?max_tokens={SHORT_TOKENS}")
    if "reference" in servers and path is DEMO_PATH:
        sides["vercel"] = Side("vercel", peer, "/vercel", body=VERCEL_BODY, done='"type":"finish"')
    for name in ("sqlite", "postgres"):
        if name in servers:
            sides[name] = _agentstream_side(name, servers[name], databases[name], path, delay_ms)
    return sides


def _verify(side: Side, results: dict[str, Any]) -> None:
    """Add what ``side`` served to its tally and count what its database holds now (one tally
    per agentstream server, whichever path its streams took)."""
    entry = results.setdefault(f"peers:stored:{side.name}", {"sent": 0, "ok": 0})
    entry["sent"] += side.sent
    entry["ok"] += side.ok
    entry.update(stored(side.database))


def _throughput(
    sides: dict[str, Side], profile: sc.Profile, results: dict[str, Any], prefix: str
) -> None:
    rounds: dict[str, list[dict[str, Any]]] = {}
    for index in range(profile.peer_rounds):
        for clients in CLIENTS:
            for name, side in sides.items():
                _log(f"[{prefix}] round {index + 1}: SSE x{clients} on {name}")
                result = side.run(
                    "throughput",
                    transport="sse",
                    concurrency=clients,
                    duration_s=profile.peer_throughput_s,
                )
                rounds.setdefault(f"{clients}:{name}", []).append(result)
    for key, measured in rounds.items():
        results[f"{prefix}:throughput:{key}"] = _summary(measured)


def _cpu_per_token(
    sides: dict[str, Side], profile: sc.Profile, results: dict[str, Any], prefix: str
) -> None:
    """Server CPU per stream at two reply lengths; the slope is the CPU per token."""
    for name in ("peer", "sqlite", "postgres"):
        side = sides.get(name)
        if side is None:
            continue
        _log(f"[{prefix}] CPU per token on {name}")
        n = profile.peer_cpu_requests
        short = side.run("sequential", short=True, requests=n)
        long = side.run("sequential", requests=n)
        per_short, per_long = short["server_cpu_s"] / n, long["server_cpu_s"] / n
        per_token = (per_long - per_short) / (STORY_TOKENS - SHORT_TOKENS)
        results[f"{prefix}:cpu:{name}"] = {
            "requests": n,
            "short_tokens": SHORT_TOKENS,
            "long_tokens": STORY_TOKENS,
            "cpu_short_s": per_short,
            "cpu_long_s": per_long,
            "per_token_s": per_token,
            "fixed_s": per_short - SHORT_TOKENS * per_token,
        }


def _bursts(
    sides: dict[str, Side],
    names: tuple[str, ...],
    streams: int,
    rounds: int,
    key: str,
    results: dict[str, Any],
) -> None:
    measured: dict[str, list[dict[str, Any]]] = {}
    for index in range(rounds):
        for name in names:
            if name in sides:
                _log(f"[{key}] round {index + 1}: {streams} simultaneous streams on {name}")
                measured.setdefault(name, []).append(sides[name].run("held", streams=streams))
    for name, runs in measured.items():
        results[f"{key}:{streams}:{name}"] = _summary(runs)


def _warm_up(sides: dict[str, Side], prefix: str) -> None:
    for name, side in sides.items():
        _log(f"[{prefix}] warm-up {name}")
        side.run("sequential", requests=5)
        # Every client's account once (its membership, agent and memories are then cached,
        # as they are for any user who has chatted before): the rounds measure steady load.
        side.run("throughput", transport="sse", concurrency=max(CLIENTS), duration_s=1.0)


def _fast(sides: dict[str, Side], profile: sc.Profile, results: dict[str, Any], key: str) -> None:
    """Throughput, CPU per token and the burst of one path, on servers at zero delay."""
    _warm_up(sides, key)
    _throughput(sides, profile, results, key)
    _cpu_per_token(sides, profile, results, key)
    burst = f"{key}:burst"
    _bursts(sides, ("peer", "postgres"), profile.peer_burst, profile.peer_rounds, burst, results)


def _paths(servers: dict[str, Server]) -> list[ModelPath]:
    return [p for p in (DEMO_PATH, PROVIDER_PATH) if p.peer in servers]


def run(
    servers: dict[str, Server],
    databases: dict[str, str],
    held_servers: DelayedServers,
    profile: sc.Profile,
    results: dict[str, Any],
) -> None:
    """The peer comparisons (the demo path, and the provider path when its peer is among
    ``servers``); ``servers`` are started, ``held_servers`` starts the paced ones (the
    agentstream ones on the same databases, so the final count covers every stream)."""
    for path in _paths(servers):
        sides = _sides(servers, databases, path)
        _fast(sides, profile, results, path.key)
        for side in sides.values():
            if side.database:
                _verify(side, results)
    for server in servers.values():
        server.stop()

    delay = profile.peer_held_delay_ms
    paced = held_servers(delay)
    try:
        for path in _paths(paced):
            sides = _sides(paced, databases, path, delay)
            names = ("peer", "sqlite", "postgres")
            for streams in profile.peer_held:
                rounds = profile.peer_held_rounds
                _bursts(sides, names, streams, rounds, f"{path.key}:held", results)
            for side in sides.values():
                if side.database:
                    _verify(side, results)
    finally:
        for server in paced.values():
            server.stop()
