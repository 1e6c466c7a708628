"""The runs part of the report: the Redis event log, two workers, resume latency."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bench.stats import pct

LOG_GOAL = 0.90  # Redis event log: at least 90 % of the in-process log's events/s
WORKERS_GOAL = 1.6  # two workers: at least 1.6x the streams/s of one
RESUME_GOAL_S = 0.020  # resume: first replayed event under 20 ms at p99, idle

# (key, label, the key of its baseline)
RESUMES = (
    ("local:same", "1 worker, in-process log", None),
    ("workers2:same", "2 workers, the run's own worker", "local:same"),
    ("workers2:other", "2 workers, the other worker (Redis)", "workers2:same"),
)


def _get(results: dict[str, Any], key: str) -> dict[str, Any] | None:
    value = results.get(f"runs:{key}")
    return value if isinstance(value, dict) else None


def _met(ok: bool) -> str:
    return "met" if ok else "NOT met"


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    if unit == "ms":
        return f"{value * 1000:.1f} ms"
    if unit == "%":
        return f"{value * 100:.0f} %"
    if unit == "cores":
        return f"{value:.2f}"
    return f"{value:,.0f}"


def _cpu_per_stream(r: dict[str, Any]) -> float:
    """Seconds of server CPU per completed stream."""
    return float(r["server_cpu_share"] / r["streams_per_s"]) if r["streams_per_s"] else 0.0


def _compare_rows(results: dict[str, Any], clients: int) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []

    def row(
        name: str, base: str, ours: str, f: Callable[[dict[str, Any]], float], unit: str, goal: str
    ) -> None:
        a, b = _get(results, f"throughput:{base}"), _get(results, f"throughput:{ours}")
        va, vb = (f(a) if a else None), (f(b) if b else None)
        ratio = f"{vb / va:.2f}×" if va and vb is not None else "—"
        rows.append((name, _fmt(va, unit), _fmt(vb, unit), ratio, goal))

    def events(r: dict[str, Any]) -> float:
        return float(r["events_per_s"])

    def streams(r: dict[str, Any]) -> float:
        return float(r["streams_per_s"])

    def server(r: dict[str, Any]) -> float:
        return float(r["server_cpu_share"])

    def loadgen(r: dict[str, Any]) -> float:
        return float(r["loadgen_cpu_share"])

    sse = f"1 worker, SSE x{clients}"
    row(f"6. {sse}: events/s, in-process log → Redis log", "local", "redis", events, "", "≥ 0.90×")
    row(f"6. {sse}: server CPU per stream", "local", "redis", _cpu_per_stream, "ms", "")
    row(f"6. {sse}: events/s, + active-run cap in Redis", "local", "redis-cap", events, "", "")
    two = f"SSE x{clients}, PostgreSQL + Redis"
    row(f"7. {two}: streams/s, 1 worker → 2 workers", "redis", "workers2", streams, "", "≥ 1.6×")
    row(f"7. {two}: server CPU (cores busy)", "redis", "workers2", server, "cores", "")
    row(f"7. {two}: load generator CPU", "redis", "workers2", loadgen, "%", "")
    return rows


def _resume_rows(results: dict[str, Any]) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    for key, label, base_key in RESUMES:
        r = _get(results, f"resume:{key}")
        base = _get(results, f"resume:{base_key}") if base_key else None
        for q in (50, 99):
            ours = pct(r["resume_s"], q) if r else None
            ref = pct(base["resume_s"], q) if base else None
            ratio = f"{ours / ref:.2f}×" if ours is not None and ref else "—"
            goal = "< 20 ms" if q == 99 else ""
            name = f"8. resume p{q}: {label}"
            rows.append((name, _fmt(ref, "ms"), _fmt(ours, "ms"), ratio, goal))
    return rows


def runs_table(results: dict[str, Any], clients: int) -> str:
    """The table of the runs benchmarks (empty when they did not run)."""
    rows = _compare_rows(results, clients) + _resume_rows(results)
    if not any(_get(results, k) for k in ("throughput:local", "resume:local:same")):
        return ""
    header = ("scenario", "baseline", "measured", "measured/baseline", "goal")
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


def runs_section(table: str) -> str:
    """The report's section around the runs table (empty when they did not run)."""
    if not table:
        return ""
    return f"""
## Runs and workers (PostgreSQL)

The same SSE throughput scenario (zero-delay demo model, 100 tokens) on PostgreSQL, with the
servers of each comparison up side by side and measured in alternating rounds
(`bench/runs.py`). Rate limits and the per-user active-run cap are off in every configuration
(`AGENTSTREAM_MAX_ACTIVE_RUNS_PER_USER=0`), so row 6 isolates the run event log: in process
(no `AGENTSTREAM_REDIS_URL`) against Redis Streams; its third line turns the cap back on
(5, counted in Redis). Row 7 is `agentstream serve --workers 2` against one worker, both with
Redis, measured once `/health` has answered from both worker pids. Row 8 reconnects to a
running run (a 20 s reply from the bench upstream) with `GET /v1/runs/{{id}}/events` and
`Last-Event-ID` five events behind, one resume at a time on an otherwise idle server, and
times the request to the first replayed event; the connection is pinned to a worker by asking
`/health` for its pid first (connection set-up not included).

{table}
"""


def runs_goals(results: dict[str, Any]) -> list[str]:
    """One line per goal of the runs benchmarks, with the numbers it was judged on."""
    lines: list[str] = []
    local, redis = _get(results, "throughput:local"), _get(results, "throughput:redis")
    if local and redis:
        share = redis["events_per_s"] / local["events_per_s"]
        lines.append(
            f"- Redis event log, one worker: {share * 100:.1f} % of the in-process log's events/s "
            f"({redis['events_per_s']:,.0f} vs {local['events_per_s']:,.0f}; server CPU per "
            f"stream {_cpu_per_stream(redis) * 1000:.1f} vs "
            f"{_cpu_per_stream(local) * 1000:.1f} ms; goal ≥ 90 %): {_met(share >= LOG_GOAL)}."
        )
    two = _get(results, "throughput:workers2")
    if redis and two:
        gain = two["streams_per_s"] / redis["streams_per_s"]
        lines.append(
            f"- Two workers: {gain:.2f}× the streams/s of one ({two['streams_per_s']:.0f} vs "
            f"{redis['streams_per_s']:.0f}; the servers kept {two['server_cpu_share']:.2f} vs "
            f"{redis['server_cpu_share']:.2f} cores busy, the load generator "
            f"{two['loadgen_cpu_share'] * 100:.0f} % of one; goal ≥ 1.6×): "
            f"{_met(gain >= WORKERS_GOAL)}."
        )
    for key, label, _ in RESUMES:
        r = _get(results, f"resume:{key}")
        if r and r["resume_s"]:
            p50, p99 = pct(r["resume_s"], 50) or 0.0, pct(r["resume_s"], 99) or 0.0
            lines.append(
                f"- Resume, {label}: p50 {p50 * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms over "
                f"{len(r['resume_s'])} resumes of {r['runs']} running run(s) (goal p99 < 20 ms): "
                f"{_met(p99 < RESUME_GOAL_S)}."
            )
    return lines
