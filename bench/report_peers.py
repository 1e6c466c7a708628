"""The peer part of the report (issue 12): agentstream against pydantic-ai served from
Starlette, the goals table, and where the fixed per-stream CPU goes."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, TypeGuard

from bench.peers import CLIENTS, STORY_TOKENS

SIDES = (
    ("reference", "reference"),
    ("peer", "pydantic-ai peer"),
    ("vercel", "VercelAIAdapter peer"),
    ("sqlite", "agentstream SQLite"),
    ("postgres", "agentstream PG+Redis"),
)
CONFIGS = (("sqlite", "SQLite"), ("postgres", "PostgreSQL + Redis"))
THROUGHPUT_GOAL = 0.9  # ≥ 0.9× the peer's streams/s
LATENCY_GOAL = 2.0  # first event p99 ≤ 2× the peer's
FIXED_GOAL_S = 0.003  # auth + prepare + finalize + usage
PER_TOKEN_GOAL = 0.5  # stretch: per-token CPU ≤ 0.5× the peer's

Getter = Callable[[str], dict[str, Any] | None]


def _getter(results: dict[str, Any], prefix: str = "peers") -> Getter:
    def get(key: str) -> dict[str, Any] | None:
        value = results.get(f"{prefix}:{key}")
        return value if isinstance(value, dict) else None

    return get


GAPS = (("p50", "gap_p50_s"), ("p99", "gap_p99_s"), ("p99.9", "gap_p99.9_s"))
"""Inter-token gap percentiles: what a reader waits between two tokens of one stream."""


def _num(v: float | None) -> TypeGuard[float]:
    return v is not None and not math.isnan(v)


def _ms(v: float | None) -> str:
    return f"{v * 1000:,.1f} ms" if _num(v) else "—"


def _rate(v: float | None) -> str:
    return f"{v:,.1f}" if _num(v) else "—"


def _us(v: float | None) -> str:
    return f"{v * 1e6:,.0f} µs" if _num(v) else "—"


def _met(ok: bool) -> str:
    return "met" if ok else "**NOT met**"


def _field(entry: dict[str, Any] | None, name: str) -> float | None:
    return float(entry[name]) if entry and entry.get(name) is not None else None


def _table(header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


Fmt = Callable[[float | None], str]
Line = tuple[str, str, Fmt]
"""One row of a scenario: its label, the result's field, how the value reads."""


def _kib(v: float | None) -> str:
    return f"{v:,.0f} KiB" if _num(v) else "—"


def _mib(v: float | None) -> str:
    return f"{v:,.0f} MB" if _num(v) else "—"


def sides_table(
    results: dict[str, Any],
    prefix: str,
    sides: Sequence[tuple[str, str]],
    throughput: Sequence[Line],
    held: Sequence[Line] = (),
) -> str:
    """Every side on every scenario of the comparison ``prefix`` (empty when it did not run),
    with agentstream's SQLite and PostgreSQL sides as ratios of the peer's: ``throughput`` and
    ``held`` name rows beyond the burst and held ones both comparisons have."""
    get = _getter(results, prefix)
    if get("throughput:10:peer") is None:
        return ""
    rows: list[tuple[str, ...]] = []

    def row(name: str, key: str, field: str, fmt: Fmt) -> None:
        values = {side: _field(get(f"{key}:{side}"), field) for side, _ in sides}
        peer = values["peer"]
        ratios = [
            f"{v / peer:.2f}×" if _num(v) and _num(peer) and peer else "—"
            for v in (values["sqlite"], values["postgres"])
        ]
        rows.append((name, *(fmt(v) for v in values.values()), *ratios))

    for clients in CLIENTS:
        for label, field, fmt in throughput:
            row(f"SSE x{clients}: {label}", f"throughput:{clients}", field, fmt)
    profile = results.get("profile", {})
    burst = profile.get("peer_burst", 200)
    row(f"burst of {burst}: first event p99", f"burst:{burst}", "first_p99_s", _ms)
    row(f"burst of {burst}: stream time p50", f"burst:{burst}", "done_p50_s", _ms)
    for q, field in GAPS:
        row(f"burst of {burst}: inter-token gap {q}", f"burst:{burst}", field, _ms)
    for streams in profile.get("peer_held", ()):
        key = f"held:{streams}"
        row(f"held x{streams}: completed", key, "ok", _rate)
        row(f"held x{streams}: stream time p50", key, "done_p50_s", _ms)
        row(f"held x{streams}: first event p99", key, "first_p99_s", _ms)
        for q, field in GAPS:
            row(f"held x{streams}: inter-token gap {q}", key, field, _ms)
        for label, field, fmt in held:
            row(f"held x{streams}: {label}", key, field, fmt)
    row("server CPU per token (slope 100 → 492 tokens)", "cpu", "per_token_s", _us)
    row("server CPU per stream, fixed part (intercept)", "cpu", "fixed_s", _ms)
    header = ("scenario", *(label for _, label in sides), "SQLite/peer", "PG/peer")
    return _table(header, rows)


def peers_table(results: dict[str, Any]) -> str:
    """Every side on every peer scenario (empty when the comparison did not run)."""
    throughput: list[Line] = [
        ("streams/s", "streams_per_s", _rate),
        ("first event p50", "first_p50_s", _ms),
        ("first event p99", "first_p99_s", _ms),
        ("server CPU per stream", "cpu_per_stream_s", _ms),
    ]
    return sides_table(results, "peers", SIDES, throughput)


def throughput_goals(get: Getter, goal: float, goal_text: str) -> list[tuple[str, ...]]:
    """Goal 1 of a comparison: agentstream's streams/s at least ``goal`` × the peer's."""
    rows: list[tuple[str, ...]] = []
    for clients in CLIENTS:
        peer = _field(get(f"throughput:{clients}:peer"), "streams_per_s")
        for config, label in CONFIGS:
            ours = _field(get(f"throughput:{clients}:{config}"), "streams_per_s")
            if _num(ours) and _num(peer) and peer:
                rows.append(
                    (
                        f"1. streams/s, {label}, {clients} client(s)",
                        f"{ours / peer:.2f}× ({ours:.1f} vs {peer:.1f})",
                        goal_text,
                        _met(ours >= goal * peer),
                    )
                )
    return rows


def _p99_row(name: str, ours: float | None, peer: float | None) -> tuple[str, ...] | None:
    if not (_num(ours) and _num(peer) and peer):
        return None
    return (
        name,
        f"{ours / peer:.2f}× ({_ms(ours)} vs {_ms(peer)})",
        "≤ 2× the peer",
        _met(ours <= LATENCY_GOAL * peer),
    )


def _latency_goals(get: Getter, burst: int) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...] | None] = []
    peer = _field(get("throughput:10:peer"), "first_p99_s")
    for config, label in CONFIGS:
        ours = _field(get(f"throughput:10:{config}"), "first_p99_s")
        rows.append(_p99_row(f"2. first event p99, {label}, 10 clients", ours, peer))
    rows.append(
        _p99_row(
            f"2. first event p99, burst of {burst} new streams, PostgreSQL",
            _field(get(f"burst:{burst}:postgres"), "first_p99_s"),
            _field(get(f"burst:{burst}:peer"), "first_p99_s"),
        )
    )
    return [r for r in rows if r is not None]


def _held_goals(get: Getter, held: tuple[int, ...]) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    for streams in held:
        peer = get(f"held:{streams}:peer")
        for config, label in CONFIGS:
            ours = get(f"held:{streams}:{config}")
            if not ours or not peer:
                continue
            t, tp = ours["done_p50_s"], peer["done_p50_s"]
            f, fp = ours["first_p99_s"], peer["first_p99_s"]
            ok = t <= tp and f <= LATENCY_GOAL * fp and ours["failed"] == 0
            rows.append(
                (
                    f"4. held x{streams}, {label} ({ours['rounds']} round(s))",
                    f"stream time p50 {_ms(t)} vs {_ms(tp)}; first event p99 {_ms(f)} vs "
                    f"{_ms(fp)} ({f / fp:.1f}×); {ours['ok']}/{ours['ok'] + ours['failed']} "
                    "completed",
                    "p50 ≤ the peer's, p99 ≤ 2×",
                    _met(ok),
                )
            )
    return rows


def fixed_split(results: dict[str, Any]) -> dict[str, float]:
    """Per-stream CPU outside pydantic-ai at 100 tokens, by step (seconds)."""
    fixed = results.get("fixed_cpu")
    split = results.get("profile_split", {}).get("phase_share", {})
    if not isinstance(fixed, dict):
        return {}
    total = fixed["agentstream_100_s"]
    steps: dict[str, float] = dict(fixed.get("steps_s", {}))
    for phase in ("framework", "encoding", "chat flow", "event loop, DB greenlets", "client"):
        if phase in split:
            steps[f"{phase} (profile share)"] = total * split[phase]
    return steps


def _fixed_goal(results: dict[str, Any]) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    fixed = results.get("fixed_cpu")
    if isinstance(fixed, dict):
        steps = fixed.get("steps_s", {})
        missing = [s for s in ("auth", "prepare", "finalize+usage") if s not in steps]
        value = sum(steps.values())
        rows.append(
            (
                "3. fixed per-stream CPU outside pydantic-ai (auth + prepare + finalize + usage)",
                " + ".join(f"{k} {_ms(v)}" for k, v in steps.items())
                + f" = {_ms(value)}"
                + (f" (not measured: {', '.join(missing)})" if missing else ""),
                "≤ 3 ms",
                _met(value <= FIXED_GOAL_S and not missing),
            )
        )
    return rows


def _per_token_goals(get: Getter) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    peer = _field(get("cpu:peer"), "per_token_s")
    for config, label in CONFIGS:
        ours = _field(get(f"cpu:{config}"), "per_token_s")
        if _num(ours) and _num(peer) and peer:
            rows.append(
                (
                    f"6. (stretch) server CPU per token, {label}",
                    f"{ours / peer:.2f}× ({_us(ours)} vs {_us(peer)})",
                    "≤ 0.5× the peer",
                    _met(ours <= PER_TOKEN_GOAL * peer),
                )
            )
    return rows


def _stored_goals(results: dict[str, Any], get: Getter) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    for config, label in CONFIGS:
        stored = get(f"stored:{config}")
        if not stored:
            continue
        ok = stored["sent"] == stored["ok"] == stored["complete"] == stored["assistant_messages"]
        errors = sorted(
            {
                str(e)
                for key, value in results.items()
                if key.startswith("peers:") and key.endswith(f":{config}")
                for e in (value.get("errors", []) if isinstance(value, dict) else [])
            }
        )
        rows.append(
            (
                f"5. nothing lost, {label}",
                f"{stored['ok']}/{stored['sent']} streams ended `done` with status complete"
                + (f" (the others: {', '.join(errors)})" if errors else "")
                + f"; {stored['complete']}/{stored['assistant_messages']} assistant messages "
                "stored complete",
                "all",
                _met(ok),
            )
        )
    return rows


def peers_goals(results: dict[str, Any]) -> str:
    """The issue-12 goals, one row each: measured, goal, met or NOT met."""
    get = _getter(results)
    profile = results.get("profile", {})
    rows = (
        throughput_goals(get, THROUGHPUT_GOAL, "≥ 0.90× the peer")
        + _latency_goals(get, profile.get("peer_burst", 200))
        + _fixed_goal(results)
        + _held_goals(get, tuple(profile.get("peer_held", ())))
        + _stored_goals(results, get)
        + _per_token_goals(get)
    )
    if not rows:
        return ""
    return _table(("goal", "measured", "goal", "verdict"), rows)


def peers_section(results: dict[str, Any]) -> str:
    """The report's peer comparison section (empty when it did not run)."""
    table, goals = peers_table(results), peers_goals(results)
    if not table and not goals:
        return ""
    profile = results.get("profile", {})
    fixed = results.get("fixed_cpu", {})
    step_calls = fixed.get("step_calls", 0) if isinstance(fixed, dict) else 0
    split = fixed_split(results)
    split_rows = [(k, _ms(v)) for k, v in split.items()]
    if isinstance(fixed, dict) and fixed:
        split_rows = [
            ("agentstream, whole request (100 tokens)", _ms(fixed["agentstream_100_s"])),
            ("pydantic-ai peer, whole request (100 tokens)", _ms(fixed["peer_100_s"])),
            ("pydantic-ai `Agent.iter` alone (100 tokens)", _ms(fixed["model_100_s"])),
            *split_rows,
            *(
                (f"CPU per token, in process: {name}", _us(v))
                for name, v in fixed.get("per_token_s", {}).items()
            ),
        ]
    return f"""
## agentstream against the pydantic-ai peer (issue 12)

The peer is what a user would write instead of agentstream: pydantic-ai served straight from
Starlette on uvicorn (`bench/peer.py`), one `Agent.iter` per request streaming each agent event
as an SSE frame, no auth, no database — and pydantic-ai's own `VercelAIAdapter.dispatch_request`
on the same server. Every side streams the demo model's whole "long story" ({STORY_TOKENS}
tokens, zero delay unless stated), one worker each, from the same load generator. The servers
of a comparison are up side by side and measured in {profile.get("peer_rounds")} alternating
rounds of {profile.get("peer_throughput_s")} s per scenario (`bench/peers.py`); each number is
the median of the rounds. Before them each side is warmed up with 5 sequential streams and 1 s
of 10 clients (agentstream: one account per client, as in the rounds, so every account has
chatted before and is cached). The burst is {profile.get("peer_burst")} streams started at once
(zero delay, {profile.get("peer_rounds")} rounds); held streams are paced at
{profile.get("peer_held_delay_ms"):.0f} ms per token, {profile.get("peer_held_rounds")} round(s).
First event = the first SSE `data:` frame (agentstream: `memory_context`; the peer: the first
text delta; Vercel: `start`). The per-token CPU is the slope of the servers' CPU per stream
between 100-token and 492-token replies, {profile.get("peer_cpu_requests")} sequential requests
each. After its scenarios each agentstream database is queried for its assistant messages.

{table}

### Goals (issue 12)

{goals}

### Fixed CPU per stream (in process, SQLite, 100-token reply)

`process_time` over {fixed.get("requests", 0) if isinstance(fixed, dict) else 0} sequential
requests through an in-process httpx client (no profiler). The three steps of goal 3 are each
called alone, {step_calls} times, one call at a time with nothing else running: auth
(`auth.deps.authenticate`, a JWT), prepare (`chat.prepare.prepare`: the agent, the turn's rows,
the memory search) and finalize + usage (`TurnWriter.finish`: the reply, the run row and the
usage row in one transaction). The profile-share lines are the whole request's CPU times the
profiler's share for that layer (the profiler loses SQLAlchemy's greenlets, which land in
"event loop, DB greenlets"). agentstream no longer runs `Agent.iter` (it drives the model
through `pydantic_ai.direct`), so its whole request can cost less than `Agent.iter` alone.

{_table(("", "CPU per request"), split_rows)}
"""
