"""Runs across workers, on PostgreSQL: the Redis event log against the in-process one (one
worker), two workers against one (both with Redis), and resume latency.

The servers of a comparison run side by side and their measurements alternate round by round,
so a burst of load from elsewhere on the machine hits both sides alike. The server without
Redis gets a database of its own: it treats every run it did not start as left over by a dead
process, and the servers with Redis would take its runs for a dead worker's.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from bench import scenarios as sc
from bench.procs import Server, run_loadgen

# The bench upstream streams 2,000 tokens 10 ms apart: a run that lasts 20 s, to resume.
LONG = {"slug": "long", "name": "Long", "model": "openai:bench-long"}
LONG_PATH = "/v1/agents/long/chat/stream/advanced"


@dataclass(frozen=True)
class Config:
    """One server of the comparison."""

    name: str
    workers: int
    redis: bool
    cap: int  # AGENTSTREAM_MAX_ACTIVE_RUNS_PER_USER; 0 = no cap


CONFIGS = (
    Config("local", 1, redis=False, cap=0),
    Config("redis", 1, redis=True, cap=0),
    Config("redis-cap", 1, redis=True, cap=5),
    Config("workers2", 2, redis=True, cap=0),
)
RESUMES = (("local", "same"), ("workers2", "same"), ("workers2", "other"))


def _server(config: Config, env: dict[str, str], redis_url: str) -> Server:
    server = sc.agentstream_server(f"agentstream-runs-{config.name}", 0, env)
    server.argv += ["--workers", str(config.workers)]
    server.env["AGENTSTREAM_MAX_ACTIVE_RUNS_PER_USER"] = str(config.cap)
    if config.redis:
        server.env["AGENTSTREAM_REDIS_URL"] = redis_url
    else:
        server.env.pop("AGENTSTREAM_REDIS_URL", None)
    return server


@contextmanager
def started(servers: Iterable[tuple[str, Server]]) -> Iterator[dict[str, Server]]:
    """Start each server as ``servers`` yields it (until ``/health`` answers) and stop every
    one started, whatever happens."""
    running: dict[str, Server] = {}
    try:
        for name, server in servers:
            running[name] = server
            server.start("/health")
        yield running
    finally:
        for server in running.values():
            server.stop()


@contextmanager
def _servers(
    local_env: dict[str, str], shared_env: dict[str, str], redis_url: str
) -> Iterator[dict[str, Server]]:
    configs = (
        (c.name, _server(c, shared_env if c.redis else local_env, redis_url)) for c in CONFIGS
    )
    with started(configs) as servers:
        for config in CONFIGS:
            # Each connection lands on whichever worker accepts it; one still importing
            # accepts none, so wait until every worker has answered.
            servers[config.name].wait_for_workers(config.workers)
        yield servers


def merged(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """The rounds of one configuration as one measurement (totals over total time)."""
    elapsed = sum(r["elapsed_s"] for r in rounds)
    ok = sum(r["ok"] for r in rounds)
    return {
        "rounds": len(rounds),
        "ok": ok,
        "failed": sum(r["failed"] for r in rounds),
        "elapsed_s": elapsed,
        "streams_per_s": ok / elapsed,
        "per_round_streams_per_s": [r["streams_per_s"] for r in rounds],
    }


def _merge(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    elapsed = sum(r["elapsed_s"] for r in rounds)
    return merged(rounds) | {
        "errors": sorted({e for r in rounds for e in r["errors"]}),
        "events_per_s": sum(r["events"] for r in rounds) / elapsed,
        "server_cpu_share": sum(r["server_cpu_s"] for r in rounds) / elapsed,
        "loadgen_cpu_share": sum(r["loadgen_cpu_s"] for r in rounds) / elapsed,
    }


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def alternating_rounds(
    targets: dict[str, sc.Target], profile: sc.Profile, clients: int, tag: str
) -> dict[str, list[dict[str, Any]]]:
    """A short warm-up on each target, then ``profile.runs_rounds`` rounds of SSE x``clients``
    on each in turn; the rounds of each target."""
    warm = sc.Profile(throughput_s=2.0)
    for name, target in targets.items():
        _log(f"[{tag}] warm-up {name}")
        sc.throughput(target, warm, "sse", clients)
    rounds: dict[str, list[dict[str, Any]]] = {name: [] for name in targets}
    for index in range(profile.runs_rounds):
        for name, target in targets.items():
            _log(f"[{tag}] round {index + 1}: SSE x{clients} on {name}")
            rounds[name].append(sc.throughput(target, profile, "sse", clients))
    return rounds


def run(
    local_env: dict[str, str],
    shared_env: dict[str, str],
    redis_url: str,
    profile: sc.Profile,
    results: dict[str, Any],
) -> None:
    """Measure and store ``runs:throughput:<config>`` and ``runs:resume:<config>:<via>``."""
    clients = profile.runs_clients
    with _servers(local_env, shared_env, redis_url) as servers:
        local_tokens = sc.prepare_agentstream(servers["local"], 10, LONG)
        shared_tokens = sc.prepare_agentstream(servers["redis"], 10, LONG)
        targets = {
            c.name: sc.agentstream_target(
                servers[c.name], local_tokens if c.name == "local" else shared_tokens
            )
            for c in CONFIGS
        }
        rounds = alternating_rounds(targets, profile, clients, "runs")
        for name, measured in rounds.items():
            results[f"runs:throughput:{name}"] = _merge(measured)
        for name, via in RESUMES:
            _log(f"[runs] resume x{profile.resumes} on {name}, via the {via} worker")
            job = targets[name].job("resume", resumes=profile.resumes, via=via)
            job["path"] = LONG_PATH
            results[f"runs:resume:{name}:{via}"] = run_loadgen(job)
