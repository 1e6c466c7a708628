"""The provider-path part of the report (issue 19): agentstream's ``openai:`` path against
pydantic-ai's ``OpenAIChatModel`` served bare, over the same upstream, and its goals."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bench.peers import PROVIDER_HELD_TOKENS, STORY_TOKENS
from bench.report_peers import (
    CONFIGS,
    Line,
    _field,
    _getter,
    _kib,
    _met,
    _mib,
    _ms,
    _num,
    _rate,
    _table,
    _us,
    sides_table,
    throughput_goals,
)

SIDES = (("peer", "pydantic-ai peer"), ("sqlite", "agentstream SQLite"), ("postgres", "PG+Redis"))
THROUGHPUT_GOAL = 2.5  # streams/s ≥ 2.5× the peer's
PER_TOKEN_GOAL_S = 50e-6  # server CPU per token ≤ 50 µs ...
PER_TOKEN_RATIO = 0.3  # ... and ≤ 0.3× the peer's
STREAM_TIME_GOAL = 1.1  # held stream time p50 ≤ 1.1× the ideal
GAP_GOAL_S = 0.100  # held inter-token gap p99 ≤ 100 ms
FIRST_EVENT_RATIO = 0.5  # held first event p99 ≤ 0.5× the peer's
HELD_GOAL_STREAMS = 200


def provider_table(results: dict[str, Any]) -> str:
    """Every side on every provider-path scenario (empty when it did not run)."""
    throughput: list[Line] = [
        ("streams/s", "streams_per_s", _rate),
        ("first event p99", "first_p99_s", _ms),
        ("server CPU per stream", "cpu_per_stream_s", _ms),
    ]
    held = [
        ("peak RSS while held", "rss_peak_mb", _mib),
        ("RSS / held streams", "rss_per_stream_kib", _kib),
    ]
    return sides_table(results, "provider", SIDES, throughput, held)


def _per_token_goals(get: Callable[[str], dict[str, Any] | None]) -> list[tuple[str, ...]]:
    rows = []
    peer = _field(get("cpu:peer"), "per_token_s")
    for config, label in CONFIGS:
        ours = _field(get(f"cpu:{config}"), "per_token_s")
        if _num(ours) and _num(peer) and peer:
            ok = ours <= PER_TOKEN_GOAL_S and ours <= PER_TOKEN_RATIO * peer
            rows.append(
                (
                    f"2. server CPU per token, {label}",
                    f"{_us(ours)} ({ours / peer:.2f}× the peer's {_us(peer)})",
                    f"≤ {PER_TOKEN_GOAL_S * 1e6:.0f} µs and ≤ {PER_TOKEN_RATIO}× the peer",
                    _met(ok),
                )
            )
    return rows


def _held_goals(
    get: Callable[[str], dict[str, Any] | None], delay_ms: float
) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    ideal = PROVIDER_HELD_TOKENS * delay_ms / 1000
    peer = get(f"held:{HELD_GOAL_STREAMS}:peer")
    for config, label in CONFIGS:
        ours = get(f"held:{HELD_GOAL_STREAMS}:{config}")
        if not ours or not peer:
            continue
        time, gap, first = ours["done_p50_s"], ours["gap_p99_s"], ours["first_p99_s"]
        ok = (
            ours["failed"] == 0
            and time <= STREAM_TIME_GOAL * ideal
            and _num(gap)
            and gap <= GAP_GOAL_S
            and first <= FIRST_EVENT_RATIO * peer["first_p99_s"]
        )
        rows.append(
            (
                f"3. held x{HELD_GOAL_STREAMS} × {PROVIDER_HELD_TOKENS} tokens, {label}",
                f"{ours['ok']}/{ours['ok'] + ours['failed']} completed; stream time p50 "
                f"{_ms(time)} ({time / ideal:.2f}× the ideal {ideal:.0f} s); gap p99 {_ms(gap)}; "
                f"first event p99 {_ms(first)} ({first / peer['first_p99_s']:.2f}× the peer's)",
                f"all; ≤ {STREAM_TIME_GOAL}× ideal; ≤ {GAP_GOAL_S * 1000:.0f} ms; "
                f"≤ {FIRST_EVENT_RATIO}× the peer",
                _met(ok),
            )
        )
    return rows


def _memory_rows(
    get: Callable[[str], dict[str, Any] | None], held: tuple[int, ...]
) -> list[tuple[str, ...]]:
    if not held:
        return []
    streams = max(held)
    values = {
        side: _field(get(f"held:{streams}:{side}"), "rss_per_stream_kib") for side, _ in SIDES
    }
    if not any(_num(v) for v in values.values()):
        return []
    measured = "; ".join(f"{label} {_kib(values[side])}" for side, label in SIDES)
    return [(f"4. RSS / held streams at {streams} held", measured, "reported", "—")]


def provider_goals(results: dict[str, Any]) -> str:
    """Issue 19's goals, one row each (goal 5, nothing lost, is the peers table's: the same
    servers and databases carry both paths)."""
    get = _getter(results, "provider")
    profile = results.get("profile", {})
    rows = (
        throughput_goals(get, THROUGHPUT_GOAL, f"≥ {THROUGHPUT_GOAL}× the peer")
        + _per_token_goals(get)
        + _held_goals(get, float(profile.get("peer_held_delay_ms", 50.0)))
        + _memory_rows(get, tuple(profile.get("peer_held", ())))
    )
    if not rows:
        return ""
    return _table(("goal", "measured", "goal", "verdict"), rows)


def provider_section(results: dict[str, Any]) -> str:
    """The report's provider-path section (empty when it did not run)."""
    table, goals = provider_table(results), provider_goals(results)
    if not table:
        return ""
    profile = results.get("profile", {})
    delay = profile.get("peer_held_delay_ms", 50.0)
    return f"""
## The provider path against pydantic-ai's OpenAIChatModel (issue 19)

Both sides stream the same {STORY_TOKENS}-token story from the bench's OpenAI-compatible
upstream (`bench/upstream.py`: Chat Completions chunks shaped like OpenAI's and vLLM's, one
write per token, encoded once at start, in a process of its own), agentstream through an
`openai:story` agent (its lean reader, `llm/lean_openai.py`), the peer through pydantic-ai's
stock `OpenAIChatModel` in `Agent.iter` (`bench/peer.py --model openai:story`). The same
agentstream servers and databases as above (memory extraction off on every bench server: it
would send each finished `openai:` turn back to the upstream, which the peer does not do);
the same rounds, clients and slope. Held streams are {PROVIDER_HELD_TOKENS} tokens paced
{delay:.0f} ms apart by the upstream on a fixed schedule (ideal stream time
{PROVIDER_HELD_TOKENS * delay / 1000:.0f} s); the inter-token gap is the time between two
consecutive text deltas of one stream as the load generator reads them, over every stream of
the scenario. "RSS / held streams" is the server's peak RSS during the held scenario divided
by the streams (the issue's measure; it includes the process's fixed memory, so it falls as
streams grow).

{table}

### Goals (issue 19)

{goals}
"""
