"""The memory retrieval section of docs/benchmarks.md (bench/memory.py)."""

from __future__ import annotations

from typing import Any

_VARIANTS = (
    ("words", "words only"),
    ("hybrid_demo", "hybrid, demo embedder"),
    ("hybrid_endpoint", "hybrid, local endpoint"),
)


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f} ms"


def memory_section(results: dict[str, Any]) -> str:
    """Retrieval latency by size and variant, and the chat's first event, per database."""
    memory = results.get("memory")
    if not memory:
        return ""
    lines = [
        "## Memory retrieval (issue 18)",
        "",
        "One retrieval as a chat does it (`bench/memory.py`): the query's embedding (hybrid "
        "only, outside any transaction), then word and meaning search over the caller's own "
        "memories, fused and ranked, in one transaction; 200k memories of 2,000 other teams "
        "are in the database throughout. CPU is this process's per query (the PostgreSQL "
        "server's work is not in it).",
        "",
        "| database | caller's memories | variant | p50 | p99 | CPU / query |",
        "|---|---|---|---|---|---|",
    ]
    for database, numbers in memory.items():
        for size, row in numbers["sizes"].items():
            for key, label in _VARIANTS:
                if key in row:
                    m = row[key]
                    lines.append(
                        f"| {database} | {int(size):,} | {label} | {_ms(m['p50_ms'])} | "
                        f"{_ms(m['p99_ms'])} | {_ms(m['cpu_ms'])} |"
                    )
    lines += [
        "",
        "The chat's first event (advanced SSE, in process, 200 sequential chats each way, "
        "alternating rounds), words only (`AGENTSTREAM_EMBEDDING_MODEL=none`) against hybrid "
        "with the demo embedder; goal: hybrid p99 ≤ 1.2× words only.",
        "",
        "| database | caller's memories | words p50 | words p99 | hybrid p50 | hybrid p99 "
        "| ratio p99 |",
        "|---|---|---|---|---|---|---|",
    ]
    for database, numbers in memory.items():
        first = numbers.get("first_event")
        if not first:
            continue
        ratio = (
            f"{first['hybrid_p99_ms'] / first['words_p99_ms']:.2f}×"
            if first["words_p99_ms"]
            else "—"
        )
        lines.append(
            f"| {database} | {first['caller_memories']:,} | {_ms(first['words_p50_ms'])} | "
            f"{_ms(first['words_p99_ms'])} | {_ms(first['hybrid_p50_ms'])} | "
            f"{_ms(first['hybrid_p99_ms'])} | {ratio} |"
        )
    return "\n".join(lines) + "\n"
