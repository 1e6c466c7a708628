"""Finished runs kept for resume (issue 21): what they cost in memory, and their cap holding.

- *Growth*: one worker with the default cap; after a warm-up, 1,000 runs of the demo model's
  whole 492-token story from 10 SSE clients. The server's RSS before and after, and what its
  registry says the finished runs' events take (``agentstream_run_events_kept_bytes``).
- *Cap*: a worker with ``AGENTSTREAM_RUN_EVENTS_MAX_MB`` a quarter of what those 1,000 runs
  kept; 5,000 runs, RSS and kept bytes after each 1,000. The kept bytes never pass the cap and
  the RSS stops growing once it binds.

SQLite only: the kept events live in the worker's memory whatever the database (the Redis
log is Redis's memory, with its own TTL).
"""

from __future__ import annotations

import sys
import uuid
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from bench import scenarios as sc
from bench.peers import STORY, STORY_PATH
from bench.procs import Server, run_loadgen

CLIENTS = 10
GROWTH_RUNS = 1_000
CAP_STEPS = 5  # of GROWTH_RUNS runs each


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _kept_bytes(server: Server) -> float:
    text = httpx.get(server.url + "/metrics", timeout=10).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "agentstream_run_events_kept_bytes":
                return sample.value
    raise RuntimeError("/metrics has no agentstream_run_events_kept_bytes")


def _runs(target: sc.Target, runs: int) -> dict[str, Any]:
    """``runs`` whole stories from ``CLIENTS`` clients; what the server holds afterwards."""
    result = run_loadgen(
        target.job(
            "throughput", transport="sse", concurrency=CLIENTS, duration_s=3600, requests=runs
        ),
        timeout_s=3600,
    )
    return {
        "ok": result["ok"],
        "errors": result["errors"],
        "rss_mb": target.server.rss_mb(),
        "kept_bytes": _kept_bytes(target.server),
        "first_event_s": result["first_event_s"],
    }


def _server(work: Path, name: str, env: dict[str, str]) -> tuple[Server, sc.Target]:
    data = work / f"runlog-{name}-{uuid.uuid4().hex[:6]}"
    env = {
        **env,
        "AGENTSTREAM_DATA_DIR": str(data),
        "AGENTSTREAM_DATABASE_URL": f"sqlite+aiosqlite:///{data / 'bench.db'}",
    }
    server = sc.agentstream_server(f"agentstream-runlog-{name}", 0, env)
    server.start("/health")
    tokens = sc.prepare_agentstream(server, CLIENTS, STORY)
    return server, sc.Target(server, STORY_PATH, "/v1/agents/story/ws", tokens)


def run(common: dict[str, str], work: Path, tiny: bool, results: dict[str, Any]) -> None:
    runs = 50 if tiny else GROWTH_RUNS
    _log(f"[runlog] RSS growth per {runs:,} finished runs kept for resume")
    server, target = _server(work, "growth", common)
    try:
        warm = _runs(target, runs // 5)
        after = _runs(target, runs)
        results["runlog:growth"] = {"runs": runs, "before": warm, "after": after}
    finally:
        server.stop()

    # A quarter of what those runs kept (at least a byte: the setting must be positive).
    cap_mb = max(after["kept_bytes"] - warm["kept_bytes"], 4) / 4 / 2**20
    _log(f"[runlog] {CAP_STEPS * runs:,} runs under a cap of {cap_mb:g} MB")
    server, target = _server(work, "cap", {**common, "AGENTSTREAM_RUN_EVENTS_MAX_MB": str(cap_mb)})
    try:
        steps = [_runs(target, runs) for _ in range(CAP_STEPS)]
        results["runlog:cap"] = {"runs": runs, "cap_mb": cap_mb, "steps": steps}
    finally:
        server.stop()
