"""The big-data and bad-token part of the report (bench/bigdata.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bench.stats import pct

CONFIGS = {"sqlite": "SQLite", "postgres": "PostgreSQL + Redis"}
FIRST_EVENT_GOAL = 1.5  # first event p99, big database / empty database
LAG_GOAL_S = 0.020  # event-loop lag p99 (GET /health latency) during 10 streaming clients
USAGE_GOAL_S = 0.200  # GET /v1/usage over 300k rows
FLOOD_GOAL = 1.2  # inter-event gap p99 with 300 bad-token requests in flight / without


def _get(results: dict[str, Any], key: str) -> dict[str, Any] | None:
    value = results.get(key)
    return value if isinstance(value, dict) else None


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value * 1000:.1f} ms"


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def _rows(results: dict[str, Any], config: str) -> list[tuple[str, ...]]:
    empty, big = _get(results, f"bigdata:empty:{config}"), _get(results, f"bigdata:big:{config}")
    rows: list[tuple[str, ...]] = []

    def row(name: str, f: Callable[[dict[str, Any]], float | None], goal: str) -> None:
        a = f(empty) if empty else None
        b = f(big) if big else None
        ratio = _ratio(b, a)
        rows.append((name, _ms(a), _ms(b), "—" if ratio is None else f"{ratio:.2f}×", goal))

    name = CONFIGS[config]
    row(f"9. {name}: chat first event p50", lambda r: pct(r["chat"]["first_event_s"], 50), "")
    row(
        f"9. {name}: chat first event p99",
        lambda r: pct(r["chat"]["first_event_s"], 99),
        f"≤ {FIRST_EVENT_GOAL}×",
    )
    row(
        f"9. {name}: event-loop lag p99 (GET /health)",
        lambda r: pct(r["chat"]["probe_s"], 99),
        f"≤ {LAG_GOAL_S * 1000:.0f} ms",
    )
    row(f"9. {name}: GET /v1/usage p50", lambda r: pct(r["usage"]["get_s"], 50), "")
    row(
        f"9. {name}: GET /v1/usage p99",
        lambda r: pct(r["usage"]["get_s"], 99),
        f"< {USAGE_GOAL_S * 1000:.0f} ms",
    )
    flood = _get(results, f"flood:{config}")
    if flood:
        a, b = pct(flood["alone"]["gaps_s"], 99), pct(flood["flooded"]["gaps_s"], 99)
        ratio = _ratio(b, a)
        rows.append(
            (
                f"10. {name}: inter-event gap p99, alone → 300 bad tokens in flight",
                _ms(a),
                _ms(b),
                "—" if ratio is None else f"{ratio:.2f}×",
                f"≤ {FLOOD_GOAL}×",
            )
        )
    return rows


def bigdata_table(results: dict[str, Any]) -> str:
    """The table (empty when the benchmark did not run)."""
    rows = [r for config in CONFIGS for r in _rows(results, config)]
    if not any(_get(results, f"bigdata:empty:{c}") for c in CONFIGS):
        return ""
    header = ("scenario", "empty database", "big database", "big/empty", "goal")
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


def bigdata_section(results: dict[str, Any]) -> str:
    table = bigdata_table(results)
    if not table:
        return ""
    return f"""
## Big data and bad tokens

`bench/bigdata.py`: each configuration on a fresh empty database and on one holding 200k
memories of 20 other teams (words the chat prompt has, embedded with the demo model as a live
server's memories are) and 300k usage rows of the measured team over 90 days, measured in the
same run; PostgreSQL is analysed after the load (as autovacuum does within a minute). Rows 9:
10 SSE clients stream back to back (demo model, 100 tokens at 20 ms; every caller has a memory,
so each chat searches) while a probe asks `GET /health` every 10 ms (its latency is how long a
request waits for the event loop); then 30 `GET /v1/usage` one at a time. Row 10 (on the empty
database): one client streams 100-token replies one after the other; the gaps between its
events alone, then with 300 bad-token chat requests always in flight from another process (on
this 2-core machine the flooding process competes with the server for the CPU). In the
"big/empty" column of row 10 the comparison is flooded/alone.

{table}
"""


def _verdict(subject: str, measured: str, ok: bool) -> str:
    """One goal's line: what was measured, and whether the goal was met."""
    return f"- {subject}: {measured}: {'met' if ok else 'NOT met'}."


def _p99s(before: list[float], after: list[float]) -> tuple[float, float, float] | None:
    """The p99 of ``before``, of ``after``, and after / before (``None`` where one is missing)."""
    a, b = pct(before, 99), pct(after, 99)
    ratio = _ratio(b, a)
    return None if ratio is None or a is None or b is None else (a, b, ratio)


def bigdata_lines(results: dict[str, Any]) -> list[str]:
    """One line per goal, with the numbers it was judged on."""
    lines: list[str] = []
    for config, name in CONFIGS.items():
        empty = _get(results, f"bigdata:empty:{config}")
        big = _get(results, f"bigdata:big:{config}")
        if empty and big:
            subject, chat = f"Big data, {name}", big["chat"]
            first = _p99s(empty["chat"]["first_event_s"], chat["first_event_s"])
            if first is not None:
                a, b, ratio = first
                measured = (
                    f"chat first event p99 {b * 1000:.0f} ms vs {a * 1000:.0f} ms on an empty "
                    f"database ({ratio:.2f}×, goal ≤ {FIRST_EVENT_GOAL}×)"
                )
                lines.append(_verdict(subject, measured, ratio <= FIRST_EVENT_GOAL))
            lag = pct(chat["probe_s"], 99)
            if lag is not None:
                measured = (
                    f"event-loop lag p99 {lag * 1000:.1f} ms during {len(chat['probe_s'])} "
                    "probes (goal ≤ 20 ms)"
                )
                lines.append(_verdict(subject, measured, lag <= LAG_GOAL_S))
            usage = pct(big["usage"]["get_s"], 99)
            if usage is not None:
                measured = (
                    f"GET /v1/usage p99 {usage * 1000:.1f} ms on the big database (goal < 200 ms)"
                )
                lines.append(_verdict(subject, measured, usage < USAGE_GOAL_S))
        flood = _get(results, f"flood:{config}")
        gaps = _p99s(flood["alone"]["gaps_s"], flood["flooded"]["gaps_s"]) if flood else None
        if gaps is not None:
            a, b, ratio = gaps
            measured = (
                f"inter-event gap p99 {b * 1000:.1f} ms with 300 bad-token requests in flight "
                f"vs {a * 1000:.1f} ms without ({ratio:.2f}×, goal ≤ {FLOOD_GOAL}×)"
            )
            lines.append(_verdict(f"Bad-token flood, {name}", measured, ratio <= FLOOD_GOAL))
    return lines


def _mb(nbytes: float) -> str:
    return f"{nbytes / 2**20:.2f} MB"


def runlog_section(results: dict[str, Any]) -> str:
    """Finished runs kept for resume (bench/runlog.py); empty when it did not run."""
    growth, cap = _get(results, "runlog:growth"), _get(results, "runlog:cap")
    if not growth or not cap:
        return ""
    before, after, runs = growth["before"], growth["after"], growth["runs"]
    kept = (after["kept_bytes"] - before["kept_bytes"]) / runs
    rows = [
        f"| {(i + 1) * cap['runs']:,} | {s['rss_mb']:.1f} MB | {_mb(s['kept_bytes'])} |"
        for i, s in enumerate(cap["steps"])
    ]
    return f"""
## Finished runs kept for resume

`bench/runlog.py`, SQLite, one worker, the demo model's whole 492-token story from 10 SSE
clients. With the default cap, {runs:,} runs after a warm-up grew the server's RSS by
**{after["rss_mb"] - before["rss_mb"]:.1f} MB** ({before["rss_mb"]:.1f} → {after["rss_mb"]:.1f}
MB); the registry says their events take **{kept / 1024:.1f} KB per run**
(`agentstream_run_events_kept_bytes`; issue 21 measured ~282 KB per run before the compact
log). Then a worker capped at `AGENTSTREAM_RUN_EVENTS_MAX_MB={cap["cap_mb"]:.2f}` (a quarter of
what those runs kept) served {len(cap["steps"]) * cap["runs"]:,} runs:

| runs served | RSS | finished runs' events kept |
|---|---|---|
{chr(10).join(rows)}
"""


FLAT_RATIO = 0.25  # RSS growth per run once the cap binds / per run without it


def runlog_lines(results: dict[str, Any]) -> list[str]:
    """The cap's goal: every run ended ``done``; the cap bound from the first step on (kept
    bytes at least half of it) and held at every step; and once it binds the RSS grows per run
    at most a quarter of what it grew per uncapped run."""
    growth, cap = _get(results, "runlog:growth"), _get(results, "runlog:cap")
    if not growth or not cap:
        return []
    limit = cap["cap_mb"] * 2**20
    steps = cap["steps"]
    served = [growth["before"], growth["after"], *steps]
    ok, sent = (
        sum(s["ok"] for s in served),
        growth["runs"] // 5 + growth["runs"] + len(steps) * cap["runs"],
    )
    most = max(s["kept_bytes"] for s in steps)
    later = (steps[-1]["rss_mb"] - steps[0]["rss_mb"]) / ((len(steps) - 1) * cap["runs"])
    uncapped = (growth["after"]["rss_mb"] - growth["before"]["rss_mb"]) / growth["runs"]
    ratio = later / uncapped if uncapped > 0 else None
    measured = (
        f"{ok:,}/{sent:,} runs ended `done`; at most {_mb(most)} kept under a cap of "
        f"{_mb(limit)} (at least {_mb(min(s['kept_bytes'] for s in steps))} at every step); "
        f"RSS growth per run {later * 1024:.2f} KB once the cap binds vs {uncapped * 1024:.2f} KB "
        "uncapped" + ("" if ratio is None else f" ({ratio:.2f}×, goal ≤ {FLAT_RATIO}×)")
    )
    bound = min(s["kept_bytes"] for s in steps) >= limit / 2 and most <= limit
    flat = ratio is not None and ratio <= FLAT_RATIO
    return [_verdict("Finished runs' events cap", measured, ok == sent and bound and flat)]
