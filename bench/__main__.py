"""``make bench``: agentstream against a bare Starlette reference, in the same run.

Prints a table and writes docs/benchmarks.md. ``--full`` runs the full profile.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import redis

from bench import bigdata, checkpoints, mcp, memory, peers, runlog, runs, tracing
from bench import scenarios as sc
from bench.procs import Server
from bench.profile import fixed_cpu, profile_requests
from bench.pydantic_floor import measure
from bench.report import write_report
from bench.report_bigdata import bigdata_lines, runlog_lines, runlog_section
from bench.report_mcp import mcp_table
from bench.report_memory import memory_section
from bench.report_peers import peers_goals, peers_table
from bench.report_provider import provider_goals, provider_table

ROOT = Path(__file__).resolve().parent.parent
PG_ADMIN = os.environ.get("AGENTSTREAM_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("AGENTSTREAM_BENCH_REDIS", "redis://127.0.0.1:6379/14")


def _pg(statement: str) -> None:
    async def run() -> None:
        conn = await asyncpg.connect(PG_ADMIN, timeout=5)
        try:
            await conn.execute(statement)
        finally:
            await conn.close()

    asyncio.run(run())


def _postgres_and_redis() -> tuple[str, str] | None:
    """A scratch PostgreSQL database and Redis URL, when both are reachable."""
    name = f"agentstream_bench_{uuid.uuid4().hex[:10]}"
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
        _pg(f'CREATE DATABASE "{name}"')
    except Exception as exc:
        print(f"PostgreSQL + Redis not reachable ({exc}); skipping that configuration")
        return None
    base = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    return f"{base}/{name}", name


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _fast_scenarios(
    label: str, target: sc.Target, profile: sc.Profile, results: dict[str, Any]
) -> None:
    """Overhead, throughput and idle sockets: the zero-delay scenarios."""
    _log(f"[{label}] overhead")
    results[f"overhead:{label}"] = sc.overhead(target, profile)
    for transport in ("sse", "ws"):
        for clients in profile.concurrency:
            _log(f"[{label}] throughput {transport} x{clients}")
            results[f"throughput:{transport}:{clients}:{label}"] = sc.throughput(
                target, profile, transport, clients
            )
    for connections in profile.idle:
        _log(f"[{label}] idle websockets x{connections}")
        results[f"idle:{connections}:{label}"] = sc.idle_ws(target, connections)


def _held_scenarios(
    label: str, target: sc.Target, profile: sc.Profile, results: dict[str, Any]
) -> None:
    for streams in profile.held:
        _log(f"[{label}] held streams x{streams}")
        results[f"held:{streams}:{label}"] = sc.held(target, streams)


def _run_agentstream(
    label: str, env: dict[str, str], profile: sc.Profile, results: dict[str, Any], cancel_model: str
) -> None:
    fast = sc.agentstream_server(f"agentstream-{label}", 0, env)
    remote = {"slug": "remote", "name": "Remote", "model": cancel_model}
    fast.start("/health")
    try:
        tokens = sc.prepare_agentstream(fast, 10, remote)
        _fast_scenarios(label, sc.agentstream_target(fast, tokens), profile, results)
    finally:
        fast.stop()
    paced = sc.agentstream_server(f"agentstream-{label}-20ms", 20, env)
    paced.start("/health")
    try:
        target = sc.agentstream_target(paced, sc.prepare_agentstream(paced, 10))
        _held_scenarios(label, target, profile, results)
    finally:
        paced.stop()


def _run_runs(shared_env: dict[str, str], profile: sc.Profile, results: dict[str, Any]) -> None:
    """The runs benchmarks; the server without Redis gets a database of its own."""
    own = _postgres_and_redis()
    if own is None:
        return
    url, name = own
    try:
        local_env = {**shared_env, "AGENTSTREAM_DATABASE_URL": url}
        local_env.pop("AGENTSTREAM_REDIS_URL")
        runs.run(local_env, shared_env, REDIS_URL, profile, results)
    finally:
        _pg(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _run_bigdata(
    common: dict[str, str], work: Path, profile: sc.Profile, results: dict[str, Any]
) -> None:
    """Big data and bad tokens (bench/bigdata.py), on SQLite and on PostgreSQL + Redis."""
    sizes = {"memories": 2_000, "usage_rows": 3_000} if profile.sequential <= 5 else {}

    def sqlite(size: str) -> tuple[dict[str, str], Any]:
        data = work / f"bigdata-sqlite-{size}-{uuid.uuid4().hex[:6]}"
        url = f"sqlite+aiosqlite:///{data / 'bench.db'}"
        return {**common, "AGENTSTREAM_DATA_DIR": str(data), "AGENTSTREAM_DATABASE_URL": url}, (
            lambda: None
        )

    bigdata.run("sqlite", sqlite, profile, results, **sizes)

    def postgres(size: str) -> tuple[dict[str, str], Any]:
        own = _postgres_and_redis()
        assert own is not None
        url, name = own
        env = {
            **common,
            "AGENTSTREAM_DATA_DIR": str(work / f"bigdata-pg-{size}"),
            "AGENTSTREAM_DATABASE_URL": url,
            "AGENTSTREAM_REDIS_URL": REDIS_URL,
        }
        return env, lambda: _pg(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    probe = _postgres_and_redis()
    if probe is not None:
        _pg(f'DROP DATABASE IF EXISTS "{probe[1]}" WITH (FORCE)')
        bigdata.run("postgres", postgres, profile, results, **sizes)


def _run_memory(work: Path, endpoint: str | None, results: dict[str, Any], tiny: bool) -> None:
    """Memory retrieval on SQLite and PostgreSQL (bench/memory.py)."""
    data = work / f"memory-sqlite-{uuid.uuid4().hex[:6]}"
    data.mkdir(parents=True, exist_ok=True)
    databases = {"sqlite": f"sqlite+aiosqlite:///{data / 'bench.db'}"}
    pg = _postgres_and_redis()
    if pg is not None:
        databases["postgres"] = pg[0]
    try:
        _log("[memory] retrieval, words only and hybrid")
        results["memory"] = memory.run(databases, work, endpoint, tiny=tiny)
    finally:
        if pg is not None:
            _pg(f'DROP DATABASE IF EXISTS "{pg[1]}" WITH (FORCE)')


def _profile(work: Path, results: dict[str, Any]) -> None:
    _log("[floor] pydantic-ai alone")
    results["pydantic_floor_s"] = asyncio.run(measure())
    _log("[profile] one request, in process")
    results["profile_split"] = profile_requests(20, work)
    _log("[profile] fixed CPU per stream, in process")
    results["fixed_cpu"] = fixed_cpu(results["profile"]["peer_cpu_requests"])
    _log("[profile] one checkpoint of 1,000 live replies, in process")
    pg = _postgres_and_redis()
    try:
        results["checkpoints"] = checkpoints.run(pg[0] if pg else None, work)
    finally:
        if pg is not None:
            _pg(f'DROP DATABASE IF EXISTS "{pg[1]}" WITH (FORCE)')


def _start(servers: dict[str, Server]) -> dict[str, Server]:
    """Start every server (all or none: a failure stops those already up)."""
    started: list[Server] = []
    try:
        for server in servers.values():
            server.start("/health" if server.name.startswith("agentstream") else "/stream")
            started.append(server)
    except BaseException:
        for server in started:
            server.stop()
        raise
    return servers


def _run_peers(
    common: dict[str, str], work: Path, profile: sc.Profile, results: dict[str, Any]
) -> None:
    """agentstream (SQLite; PostgreSQL + Redis) against the pydantic-ai peers (bench/peers.py)."""
    data = work / f"peers-sqlite-{uuid.uuid4().hex[:6]}"
    databases = {"sqlite": f"sqlite+aiosqlite:///{data / 'bench.db'}"}
    envs = {
        "sqlite": {
            **common,
            "AGENTSTREAM_DATA_DIR": str(data),
            "AGENTSTREAM_DATABASE_URL": databases["sqlite"],
        }
    }
    pg = _postgres_and_redis()
    if pg is not None:
        databases["postgres"] = pg[0]
        envs["postgres"] = {
            **common,
            "AGENTSTREAM_DATA_DIR": str(work / "peers-pg"),
            "AGENTSTREAM_DATABASE_URL": pg[0],
            "AGENTSTREAM_REDIS_URL": REDIS_URL,
        }

    def agentstream(delay_ms: float) -> dict[str, Server]:
        return {
            name: sc.agentstream_server(f"agentstream-{name}-{delay_ms:.0f}ms", delay_ms, env)
            for name, env in envs.items()
        }

    upstream = {k: v for k, v in common.items() if k.startswith("OPENAI_")}

    def peer_servers(delay_ms: float) -> dict[str, Server]:
        return {
            "peer": sc.peer_server(delay_ms),
            "peer-openai": sc.peer_server(delay_ms, upstream),
        }

    def paced(delay_ms: float) -> dict[str, Server]:
        return _start({**peer_servers(delay_ms), **agentstream(delay_ms)})

    fast = {
        "reference": sc.reference_server(0, peers.STORY_TOKENS),
        **peer_servers(0),
        **agentstream(0),
    }
    try:
        peers.run(_start(fast), databases, paced, profile, results)
    finally:
        for server in fast.values():
            server.stop()
        if pg is not None:
            _pg(f'DROP DATABASE IF EXISTS "{pg[1]}" WITH (FORCE)')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--full", action="store_true", help="the full (slow) profile")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks.md")
    parser.add_argument("--tiny", action="store_true", help="minimal sizes, to try the harness")
    parser.add_argument(
        "--only",
        choices=("all", "peers", "profile", "bigdata", "runlog", "tracing", "memory", "mcp"),
        default="all",
        help="run one part (its sections only; for trying a change)",
    )
    args = parser.parse_args()
    started = time.monotonic()
    profile = sc.Profile.full() if args.full else sc.Profile.tiny() if args.tiny else sc.Profile()
    results: dict[str, Any] = {"machine": sc.machine(), "profile": profile.__dict__}
    work = Path(os.environ.get("AGENTSTREAM_BENCH_DIR", ROOT / "bench" / "results"))
    work.mkdir(parents=True, exist_ok=True)

    # The OpenAI-compatible upstream of the provider path (and the cancel scenario), in a
    # process of its own.
    upstream = Server("upstream", [sys.executable, "-m", "bench.upstream", "--port", "{port}"])
    upstream.start("/_closes")
    # Memory extraction would send each completed openai: turn's text back to the upstream
    # (a second, non-streamed request the peer does not make): off, so both sides stream alike.
    common = {
        "OPENAI_BASE_URL": upstream.url + "/v1",
        "OPENAI_API_KEY": "bench",
        "AGENTSTREAM_MEMORY_EXTRACTION": "false",
    }
    if args.only != "all":
        try:
            if args.only == "peers":
                _run_peers(common, work, profile, results)
            if args.only == "profile":
                _profile(work, results)
            if args.only == "bigdata":
                _run_bigdata({}, work, profile, results)
            if args.only == "runlog":
                runlog.run({}, work, args.tiny, results)
                print(runlog_section(results))
            if args.only == "tracing":
                tracing.run({}, work, profile, results)
            if args.only == "memory":
                _run_memory(work, upstream.url + "/v1", results, args.tiny)
                print(memory_section(results))
            if args.only == "mcp":
                _log("[mcp] a tool-calling turn through a local MCP server")
                mcp.run(common, work, profile, results)
                print(mcp_table(results))
        finally:
            upstream.stop()
        results["runtime_s"] = time.monotonic() - started
        (work / f"results-{args.only}.json").write_text(json.dumps(results, indent=2))
        print("\n".join(bigdata_lines(results) + runlog_lines(results)))
        keep = ("peers:", "provider:", "fixed", "tracing:")
        print(json.dumps({k: v for k, v in results.items() if k.startswith(keep)}))
        tables = (peers_table, peers_goals, provider_table, provider_goals)
        print("\n\n".join(t for t in (table(results) for table in tables) if t))
        return
    try:
        # The reference first, at zero delay, then paced at 20 ms per token.
        ref = sc.reference_server(0)
        ref.start("/stream")
        try:
            _fast_scenarios("reference", sc.reference_target(ref), profile, results)
        finally:
            ref.stop()
        ref = sc.reference_server(20)
        ref.start("/stream")
        try:
            target = sc.reference_target(ref)
            _held_scenarios("reference", target, profile, results)
            _log("[reference] cancel")
            results["cancel:reference"] = sc.cancel(target, profile, None)
        finally:
            ref.stop()

        _run_peers(common, work, profile, results)
        data = work / f"sqlite-{uuid.uuid4().hex[:6]}"
        sqlite_env = {
            **common,
            "AGENTSTREAM_DATA_DIR": str(data),
            "AGENTSTREAM_DATABASE_URL": f"sqlite+aiosqlite:///{data / 'bench.db'}",
        }
        _run_agentstream("sqlite", sqlite_env, profile, results, "openai:bench-cancel")
        tracing.run(common, work, profile, results)
        server = sc.agentstream_server("agentstream-cancel", 0, sqlite_env)
        server.start("/health")
        try:
            tokens = sc.prepare_agentstream(
                server, 1, {"slug": "remote", "name": "Remote", "model": "openai:bench-cancel"}
            )
            target = sc.Target(server, sc.ADVANCED, "/v1/agents/remote/ws", tokens)
            _log("[sqlite] cancel")
            results["cancel:sqlite"] = sc.cancel(target, profile, upstream)
        finally:
            server.stop()

        pg = _postgres_and_redis()
        if pg is not None:
            url, name = pg
            pg_env = {
                **common,
                "AGENTSTREAM_DATA_DIR": str(work / "pg"),
                "AGENTSTREAM_DATABASE_URL": url,
                "AGENTSTREAM_REDIS_URL": REDIS_URL,
            }
            try:
                _run_agentstream("postgres", pg_env, profile, results, "openai:bench-cancel")
                _run_runs(pg_env, profile, results)
            finally:
                _pg(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        _run_memory(work, upstream.url + "/v1", results, args.tiny)
        _log("[mcp] a tool-calling turn through a local MCP server")
        mcp.run(common, work, profile, results)
    finally:
        upstream.stop()

    _run_bigdata({}, work, profile, results)
    runlog.run({}, work, args.tiny, results)
    _profile(work, results)
    results["runtime_s"] = time.monotonic() - started
    (work / "results.json").write_text(json.dumps(results, indent=2))
    table = write_report(results, args.out, work / "profile.txt", full=args.full)
    print(table)
    print(f"\nwrote {args.out.relative_to(ROOT)} and {work.relative_to(ROOT)}/results.json")


if __name__ == "__main__":
    main()
