"""A tool-calling turn through a local MCP server: agentstream against pydantic-ai served bare.

One MCP server (``bench/mcp_server.py``, its ``echo`` tool) in a process of its own, and the
bench's upstream's ``tool-call`` model (``bench/upstream.py``), which calls the first tool it
is offered once per turn and then answers in five tokens: each turn is two model requests and
one MCP call. The sides, up side by side and measured in alternating rounds of SSE load:

- ``sqlite``: agentstream on SQLite, an agent with that server (``bench__echo``; the host is
  allowed by ``AGENTSTREAM_MCP_ALLOWED_HOSTS``), its advanced SSE endpoint;
- ``peer``: ``bench/peer.py --mcp``, pydantic-ai's ``Agent.iter`` with an ``MCPToolset``
  connected by each run (what agentstream does: a run connects, calls and closes);
- ``peer-open``: the same with the toolset entered once for the app's lifetime.

Server CPU is the serving process's alone: the MCP server and the upstream are other processes.
The MCP server's own CPU per turn is kept too (what each side's way of calling costs the tool
server). Results are keyed ``mcp:<clients>:<side>``.
"""

from __future__ import annotations

import statistics
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from bench import scenarios as sc
from bench.peers import Side
from bench.procs import Server
from bench.upstream import TOOL_MODEL

SIDES = ("sqlite", "peer", "peer-open")
CLIENTS = (1, 10)
TOOL_PATH = "/v1/agents/tool/chat/stream/advanced"
TOOL_RESULT = {"sqlite": '"type":"tool_result"', "peer": '"type":"function_tool_result"'}


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _servers(common: dict[str, str], work: Path, mcp_url: str) -> dict[str, Server]:
    data = work / f"mcp-sqlite-{uuid.uuid4().hex[:6]}"
    env = {
        **common,
        "AGENTSTREAM_DATA_DIR": str(data),
        "AGENTSTREAM_DATABASE_URL": f"sqlite+aiosqlite:///{data / 'bench.db'}",
        "AGENTSTREAM_MCP_ALLOWED_HOSTS": "127.0.0.1",
    }
    upstream = {k: v for k, v in common.items() if k.startswith("OPENAI_")}
    peer_env = {"PYDANTIC_AI_NO_BANNER": "1", **upstream}
    peer = [sys.executable, "-m", "bench.peer", "--port", "{port}"]
    peer += ["--model", f"openai:{TOOL_MODEL}", "--mcp", mcp_url]
    return {
        "sqlite": sc.agentstream_server("agentstream-mcp", 0, env),
        "peer": Server("peer-mcp", peer, peer_env),
        "peer-open": Server("peer-mcp-open", [*peer, "--mcp-session", "open"], peer_env),
    }


def _agentstream_tokens(server: Server, mcp_url: str, accounts: int) -> list[str | None]:
    """Accounts whose team has the MCP server and an agent ``tool`` that uses it."""
    tokens = sc.prepare_agentstream(server, accounts)
    agent = {
        "slug": "tool",
        "name": "Tool",
        "model": f"openai:{TOOL_MODEL}",
        "skills": [],
        "mcp_servers": ["bench"],
    }
    with httpx.Client(base_url=server.url, timeout=60) as http:
        for token in tokens:
            headers = {"Authorization": f"Bearer {token}"}
            mcp = {"name": "bench", "url": mcp_url}
            http.post("/v1/mcp-servers", json=mcp, headers=headers).raise_for_status()
            http.post("/v1/agents", json=agent, headers=headers).raise_for_status()
    return tokens


def _check_one_call(name: str, side: Side) -> None:
    """One turn by hand: it must hold exactly one tool result (the tool really ran)."""
    token = side.tokens[0]
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = httpx.post(side.server.url + side.path, json=side.body, headers=headers, timeout=60)
    response.raise_for_status()
    marker = TOOL_RESULT["sqlite" if name == "sqlite" else "peer"]
    calls = response.text.replace(" ", "").count(marker)
    if calls != 1:
        raise RuntimeError(f"[mcp] a turn on {name} made {calls} tool calls:\n{response.text}")


def _summary(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "rounds": len(rounds),
        "ok": sum(r["ok"] for r in rounds),
        "failed": sum(r["failed"] for r in rounds),
        "errors": sorted({e for r in rounds for e in r["errors"]}),
        "turns_per_s": statistics.median(r["ok"] / r["elapsed_s"] for r in rounds),
        "cpu_per_turn_s": statistics.median(r["server_cpu_s"] / max(r["ok"], 1) for r in rounds),
        "mcp_cpu_per_turn_s": statistics.median(r["mcp_cpu_s"] / max(r["ok"], 1) for r in rounds),
    }


def run(common: dict[str, str], work: Path, profile: sc.Profile, results: dict[str, Any]) -> None:
    """Measure and store ``mcp:<clients>:<side>``; ``common`` points at the upstream."""
    mcp = Server("mcp", [sys.executable, "-m", "bench.mcp_server", "--port", "{port}"])
    mcp.start("/mcp")  # a GET without a session is a 4xx: the server is up
    mcp_url = mcp.url + "/mcp"
    servers = _servers(common, work, mcp_url)
    try:
        # Side by side, started at once (each takes seconds to import on a loaded machine).
        with ThreadPoolExecutor(len(servers)) as pool:
            for started in [
                pool.submit(s.start, "/health" if s.name.startswith("agentstream") else "/stream")
                for s in servers.values()
            ]:
                started.result()
        sqlite = servers["sqlite"]
        database = sqlite.env["AGENTSTREAM_DATABASE_URL"]
        tokens = _agentstream_tokens(sqlite, mcp_url, max(CLIENTS))
        sides = {
            "sqlite": Side("sqlite", sqlite, TOOL_PATH, tokens=tokens, database=database),
            "peer": Side("peer", servers["peer"], "/stream"),
            "peer-open": Side("peer-open", servers["peer-open"], "/stream"),
        }
        for name, side in sides.items():
            _log(f"[mcp] warm-up {name}")
            _check_one_call(name, side)
            side.run("throughput", transport="sse", concurrency=max(CLIENTS), duration_s=1.0)
        rounds: dict[str, list[dict[str, Any]]] = {}
        for index in range(profile.peer_rounds):
            for clients in CLIENTS:
                for name, side in sides.items():
                    _log(f"[mcp] round {index + 1}: SSE x{clients} on {name}")
                    before = mcp.cpu_s()
                    result = side.run(
                        "throughput",
                        transport="sse",
                        concurrency=clients,
                        duration_s=profile.peer_throughput_s,
                    )
                    result["mcp_cpu_s"] = mcp.cpu_s() - before
                    rounds.setdefault(f"{clients}:{name}", []).append(result)
        for key, measured in rounds.items():
            results[f"mcp:{key}"] = _summary(measured)
    finally:
        for server in servers.values():
            server.stop()
        mcp.stop()
