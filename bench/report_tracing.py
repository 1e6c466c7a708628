"""The tracing part of the report: streams/s with and without an OTLP exporter."""

from __future__ import annotations

from typing import Any

GOAL = 0.95  # with an exporter, at least 95 % of the streams/s without one


def _get(results: dict[str, Any], name: str) -> dict[str, Any] | None:
    value = results.get(f"tracing:{name}")
    return value if isinstance(value, dict) else None


def _cpu_ms(r: dict[str, Any]) -> float:
    return float(r["server_cpu_s"] / r["ok"] * 1000) if r["ok"] else 0.0


def tracing_section(results: dict[str, Any], clients: int) -> str:
    """The report's section on tracing's cost (empty when it did not run)."""
    off, otlp = _get(results, "off"), _get(results, "otlp")
    if not off or not otlp:
        return ""
    rows = [
        ("streams/s", f"{off['streams_per_s']:,.0f}", f"{otlp['streams_per_s']:,.0f}"),
        ("server CPU per stream", f"{_cpu_ms(off):.2f} ms", f"{_cpu_ms(otlp):.2f} ms"),
        ("failed streams", str(off["failed"]), str(otlp["failed"])),
        ("spans the receiver decoded", "—", f"{otlp.get('spans_received', 0):,}"),
    ]
    table = "\n".join(
        [f"| tracing, SSE x{clients} | off | OTLP/HTTP exporter |", "|---|---|---|"]
        + [f"| {a} | {b} | {c} |" for a, b, c in rows]
    )
    return f"""
## Tracing (SQLite)

The same SSE throughput scenario (zero-delay demo model, 100 tokens, each reply one model
request: two spans per run) on two servers side by side, measured in alternating rounds
(`bench/tracing.py`): one without tracing, one with `OTEL_EXPORTER_OTLP_ENDPOINT` set, exporting
every run's trace over OTLP/HTTP (protobuf) to a receiver on 127.0.0.1 that decodes and counts
the spans.

{table}
"""


def tracing_goals(results: dict[str, Any]) -> list[str]:
    """The goal line of the tracing benchmark."""
    off, otlp = _get(results, "off"), _get(results, "otlp")
    if not off or not otlp or not off["streams_per_s"]:
        return []
    share = otlp["streams_per_s"] / off["streams_per_s"]
    verdict = "met" if share >= GOAL else "NOT met"
    return [
        f"- Tracing with an OTLP exporter: {share * 100:.1f} % of the streams/s without one "
        f"({otlp['streams_per_s']:.0f} vs {off['streams_per_s']:.0f}; server CPU per stream "
        f"{_cpu_ms(otlp):.2f} vs {_cpu_ms(off):.2f} ms; goal ≥ 95 %): {verdict}. Off, the "
        "flow does no tracing work at all (docs/architecture.md)."
    ]
