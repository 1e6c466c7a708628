"""Turning results into the printed table and docs/benchmarks.md."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.checkpoints import section as checkpoints_section
from bench.report_bigdata import (
    bigdata_lines,
    bigdata_section,
    bigdata_table,
    runlog_lines,
    runlog_section,
)
from bench.report_mcp import mcp_section, mcp_table
from bench.report_memory import memory_section
from bench.report_peers import peers_goals, peers_section, peers_table
from bench.report_provider import provider_goals, provider_section, provider_table
from bench.report_runs import runs_goals, runs_section, runs_table
from bench.report_tracing import tracing_goals, tracing_section
from bench.stats import pct

NOTES = Path(__file__).with_name("NOTES.md")
CONFIGS = ("sqlite", "postgres")


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value * 1000:.1f} ms"


def _num(value: float | None, unit: str = "") -> str:
    return "—" if value is None else f"{value:,.0f}{unit}"


def _ratio(ours: float | None, ref: float | None) -> str:
    if ours is None or ref is None or ref == 0:
        return "—"
    return f"{ours / ref:.2f}×"


def _rows(results: dict[str, Any], profile: dict[str, Any]) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []

    def get(key: str) -> dict[str, Any] | None:
        value = results.get(key)
        return value if isinstance(value, dict) else None

    def row(name: str, key: str, extract: Any, fmt: Any) -> None:
        values = [(extract(get(f"{key}:{c}")) if get(f"{key}:{c}") else None) for c in CONFIGS]
        ref = extract(get(f"{key}:reference")) if get(f"{key}:reference") else None
        rows.append((name, *(fmt(v) for v in values), fmt(ref), _ratio(values[0], ref)))

    for q in (50, 99):
        row(
            f"1. overhead: first event p{q}",
            "overhead",
            lambda r, q=q: pct(r["first_event_s"], q),
            _ms,
        )
    for q in (50, 99):
        row(f"1. overhead: done p{q}", "overhead", lambda r, q=q: pct(r["done_s"], q), _ms)
    for transport in ("sse", "ws"):
        for clients in profile["concurrency"]:
            key = f"throughput:{transport}:{clients}"
            row(
                f"2. {transport.upper()} x{clients}: events/s",
                key,
                lambda r: r["events_per_s"],
                _num,
            )
            row(
                f"2. {transport.upper()} x{clients}: streams/s",
                key,
                lambda r: r["streams_per_s"],
                _num,
            )
            row(
                f"2. {transport.upper()} x{clients}: load generator CPU",
                key,
                lambda r: r["loadgen_cpu_s"] / r["elapsed_s"],
                lambda v: "—" if v is None else f"{v * 100:.0f} %",
            )
    for streams in profile["held"]:
        key = f"held:{streams}"
        row(f"3. held x{streams}: completed", key, lambda r: float(r["ok"]), _num)
        row(f"3. held x{streams}: first event p50", key, lambda r: pct(r["first_event_s"], 50), _ms)
        row(f"3. held x{streams}: first event p99", key, lambda r: pct(r["first_event_s"], 99), _ms)
        row(
            f"3. held x{streams}: server CPU",
            key,
            lambda r: r["server_cpu_s"],
            lambda v: "—" if v is None else f"{v:.1f} s",
        )
        row(
            f"3. held x{streams}: server RSS",
            key,
            lambda r: r["server_rss_mb"],
            lambda v: "—" if v is None else f"{v:.0f} MiB",
        )
    for connections in profile["idle"]:
        row(
            f"4. idle WS x{connections}: memory per connection",
            f"idle:{connections}",
            lambda r: r["kib_per_connection"],
            lambda v: "—" if v is None else f"{v:.1f} KiB",
        )
    for q in (50, 99):
        row(f"5. cancel → done p{q}", "cancel", lambda r, q=q: pct(r["to_done_s"], q), _ms)
    for q in (50, 99):
        row(
            f"5. cancel → upstream closed p{q}",
            "cancel",
            lambda r, q=q: pct(r.get("to_upstream_closed_s", []), q),
            _ms,
        )
    return rows


def _goals(results: dict[str, Any], profile: dict[str, Any]) -> list[str]:
    def v(key: str, f: Any) -> float | None:
        r = results.get(key)
        try:
            return f(r) if r else None
        except (KeyError, TypeError):
            return None

    lines = []
    ours = v("overhead:sqlite", lambda r: pct(r["first_event_s"], 50))
    ref = v("overhead:reference", lambda r: pct(r["first_event_s"], 50))
    if ours is not None and ref is not None:
        gap = (ours - ref) * 1000
        lines.append(
            f"- Overhead: first event p50 is {gap:.1f} ms above the reference "
            f"(goal ≤ 10 ms): {'met' if gap <= 10 else 'NOT met'}."
        )
    for transport in ("sse", "ws"):
        for clients in profile["concurrency"]:
            key = f"throughput:{transport}:{clients}"
            a = v(f"{key}:sqlite", lambda r: r["events_per_s"])
            b = v(f"{key}:reference", lambda r: r["events_per_s"])
            if a and b:
                share = a / b * 100
                lines.append(
                    f"- Throughput {transport.upper()} x{clients}: {share:.0f} % of the "
                    f"reference (goal ≥ 60 %): {'met' if share >= 60 else 'NOT met'}."
                )
    biggest = max(profile["held"])
    for config in CONFIGS:
        done = v(f"held:{biggest}:{config}", lambda r: r["ok"])
        p99 = v(f"held:{biggest}:{config}", lambda r: pct(r["first_event_s"], 99))
        if done is not None and p99 is not None:
            ok = done == biggest and p99 < 0.25
            lines.append(
                f"- Held streams ({config}): {done:.0f}/{biggest} completed, first event "
                f"p99 {p99 * 1000:.0f} ms (goal all, < 250 ms): {'met' if ok else 'NOT met'}."
            )
    for connections in profile["idle"]:
        a = v(f"idle:{connections}:sqlite", lambda r: r["kib_per_connection"])
        b = v(f"idle:{connections}:reference", lambda r: r["kib_per_connection"])
        if a is not None and b:
            lines.append(
                f"- Idle WebSockets x{connections}: {a:.1f} KiB vs {b:.1f} KiB per connection "
                f"({a / b:.1f}×, goal ≤ 2×): {'met' if a <= 2 * b else 'NOT met'}."
            )
    floor = results.get("pydantic_floor_s")
    if isinstance(floor, float):
        lines.append(
            f"- For scale: pydantic-ai alone costs {floor * 1000:.1f} ms of CPU per 100-token "
            f"run here (`python -m bench.pydantic_floor`), i.e. at most {1 / floor:.0f} "
            "streams/s per core before any server work."
        )
    done99 = v("cancel:sqlite", lambda r: pct(r["to_done_s"], 99))
    up99 = v("cancel:sqlite", lambda r: pct(r["to_upstream_closed_s"], 99))
    if done99 is not None:
        lines.append(
            f"- Cancel → done p99 {done99 * 1000:.1f} ms (goal ≤ 50 ms): "
            f"{'met' if done99 <= 0.05 else 'NOT met'}."
        )
    if up99 is not None:
        lines.append(
            f"- Cancel → upstream closed p99 {up99 * 1000:.1f} ms (goal ≤ 100 ms): "
            f"{'met' if up99 <= 0.1 else 'NOT met'}."
        )
    return lines


def write_report(results: dict[str, Any], out: Path, profile_txt: Path, *, full: bool) -> str:
    """Write the markdown report; return the table for the terminal."""
    profile = results["profile"]
    header = (
        "scenario",
        "agentstream SQLite",
        "agentstream PostgreSQL+Redis",
        "reference",
        "ratio SQLite/ref",
    )
    rows = _rows(results, profile)
    table = "\n".join(
        ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        + ["| " + " | ".join(r) + " |" for r in rows]
    )
    split = results.get("profile_split", {})
    split_lines = [
        f"| {name} | {ms:.2f} ms | {split['share'][name] * 100:.0f} % |"
        for name, ms in sorted(split.get("per_request_ms", {}).items(), key=lambda kv: -kv[1])
    ]
    machine = results["machine"]
    goals = (
        _goals(results, profile)
        + runs_goals(results)
        + bigdata_lines(results)
        + runlog_lines(results)
        + tracing_goals(results)
    )
    tracing = tracing_section(results, profile.get("runs_clients", 10))
    runs = runs_table(results, profile.get("runs_clients", 10))
    notes = NOTES.read_text() if NOTES.exists() else ""
    seconds = results.get("runtime_s")
    runtime = f"{seconds / 60:.1f} minutes" if isinstance(seconds, float) else "an unknown time"
    text = f"""# Benchmarks

Generated by `make bench{"-full" if full else ""}` (`python -m bench{" --full" if full else ""}`) on
{machine["date"]}: {machine["cpu"]}, {machine["cores"]} cores, Python {machine["python"]}.
Every number below comes from the same run; the reference is a bare Starlette app on uvicorn
(`bench/reference.py`) streaming the same SSE framing and WebSocket messages from the same paced
token source, with no auth, database or agent. Outside the peer comparison (whose replies are
the demo's whole 492-token story), agentstream runs the offline `demo` model capped at 100
tokens, one uvicorn worker, database pool 5, logs at WARNING, rate limits off. The load
generator (`bench/loadgen.py`) runs in its own process with a raw HTTP/1.1 SSE client and the
`websockets` client; its CPU use is reported so a reader can tell whether it was the bottleneck.
Run `make bench` for the quick profile, `make bench-full` for the full one
({"this run" if full else "not this run"}). This run took {runtime}.
{peers_section(results)}{provider_section(results)}
## Results

{table}

{runs_section(runs)}{bigdata_section(results)}{runlog_section(results)}{tracing}{mcp_section(results)}
{memory_section(results)}
{checkpoints_section(results)}
## Goals

{chr(10).join(goals) or "- (no goal could be evaluated)"}

## Where one request's time goes

In-process profile (pyinstrument) of {split.get("requests", 0)} advanced-SSE chats (100 tokens, zero
delay, SQLite), time attributed to the first matching layer walking up from where it was spent.
Absolute times are inflated by the sampling profiler and "framework" includes the in-process
httpx client driving the requests; read the shares.
The call tree of this run is in [benchmarks-profile.txt](benchmarks-profile.txt).

| layer | per request | share |
|---|---|---|
{chr(10).join(split_lines)}

{notes}
"""
    out.write_text(text)
    if profile_txt.exists():
        out.with_name("benchmarks-profile.txt").write_text(profile_txt.read_text())
    parts = (
        peers_table(results),
        peers_goals(results),
        provider_table(results),
        provider_goals(results),
    )
    peers = "\n\n".join(t for t in parts if t)
    return (
        (peers + "\n\n" if peers else "")
        + table
        + "\n\n"
        + (runs + "\n\n" if runs else "")
        + (bigdata_table(results) + "\n\n" if bigdata_table(results) else "")
        + (tracing.strip() + "\n\n" if tracing else "")
        + (mcp_table(results) + "\n\n" if mcp_table(results) else "")
        + "\n".join(goals)
        + f"\n\nmake bench took {runtime}"
    )
