"""The MCP part of the report: a tool-calling turn on agentstream and on pydantic-ai bare."""

from __future__ import annotations

from typing import Any

from bench.mcp import CLIENTS

LABELS = {
    "sqlite": "agentstream, SQLite",
    "peer": "pydantic-ai bare, toolset per run",
    "peer-open": "pydantic-ai bare, one open session",
}


def _get(results: dict[str, Any], key: str) -> dict[str, Any] | None:
    value = results.get(f"mcp:{key}")
    return value if isinstance(value, dict) else None


def mcp_table(results: dict[str, Any]) -> str:
    """turns/s, server CPU per turn and what agentstream adds per call (empty if not run)."""
    lines: list[str] = []
    for clients in CLIENTS:
        ours = _get(results, f"{clients}:sqlite")
        for side, label in LABELS.items():
            r = _get(results, f"{clients}:{side}")
            if r is None:
                continue
            cpu = r["cpu_per_turn_s"] * 1000
            if side == "sqlite" or ours is None:
                added = "—"
            else:
                added = f"{ours['cpu_per_turn_s'] * 1000 - cpu:+.2f} ms"
            rate = f"{r['turns_per_s']:,.1f}" + (f" ({r['failed']} failed)" if r["failed"] else "")
            tool = r["mcp_cpu_per_turn_s"] * 1000
            lines.append(
                f"| {label} | {clients} | {rate} | {cpu:.2f} ms | {added} | {tool:.2f} ms |"
            )
    if not lines:
        return ""
    header = [
        "| MCP tool turn (SSE) | clients | turns/s | server CPU per turn "
        "| agentstream adds per call | MCP server CPU per turn |",
        "|---|---|---|---|---|---|",
    ]
    return "\n".join(header + lines)


def mcp_section(results: dict[str, Any]) -> str:
    """The report's section on a tool-calling turn (empty when it did not run)."""
    table = mcp_table(results)
    if not table:
        return ""
    return f"""
## A tool-calling turn through a local MCP server

`bench/mcp.py`: one MCP server (`bench/mcp_server.py`, Streamable HTTP on 127.0.0.1, an `echo`
tool) in a process of its own; a model (the upstream's `openai:tool-call`) that calls the tool
once per turn and then answers in five tokens, so a turn is two model requests and one MCP
call. agentstream (an agent with the server registered, tool `bench__echo`) against
pydantic-ai's `Agent.iter` served bare (`bench/peer.py --mcp`) with an `MCPToolset` on the same
server, either connected by each run as agentstream's run does, or entered once and shared.
Server CPU is the serving process's alone; "adds per call" is agentstream's CPU per turn minus
that row's (one call per turn); the MCP server's CPU per turn is what each way of calling costs
the tool's side. Medians of
alternating rounds; on a shared 2-core machine the turns/s are bound by the CPU of all four
processes (server, MCP server, upstream, load generator) more than by any one of them.

{table}
"""
