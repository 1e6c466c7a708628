"""The benchmark scenarios, each measured on agentstream and on the reference."""

from __future__ import annotations

import os
import sys
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx

from bench.procs import IdleSockets, Server, run_loadgen

ADVANCED = "/v1/agents/bench/chat/stream/advanced"
# The one prompt of every scenario and transport (SSE body, WebSocket message frame): the
# demo model answers it with a story capped at the agent's 100 tokens.
BODY = {"message": "tell me a long story"}


@dataclass
class Profile:
    """Sizes of one run: quick by default, full with ``--full``."""

    # The quick sizes keep `make bench` near 25 minutes on a busy 2-core machine; most of
    # it goes to the peer comparison's held streams (492 tokens at 50 ms, CPU-bound).
    sequential: int = 30
    throughput_s: float = 3.0
    concurrency: tuple[int, ...] = (10,)
    held: tuple[int, ...] = (100,)
    idle: tuple[int, ...] = (1000,)
    cancels: int = 10
    runs_clients: int = 10  # SSE clients of the run-log and workers comparisons
    runs_rounds: int = 2  # alternating rounds of throughput_s per configuration
    resumes: int = 100
    # The peer comparison (bench/peers.py): the 492-token story, alternating rounds.
    peer_rounds: int = 3
    peer_throughput_s: float = 3.0
    peer_cpu_requests: int = 20
    peer_burst: int = 200
    peer_held: tuple[int, ...] = (200, 500)
    peer_held_rounds: int = 1
    peer_held_delay_ms: float = 50.0

    @classmethod
    def tiny(cls) -> Profile:
        """Minimal sizes, to try the harness (``--tiny``); its numbers mean nothing."""
        return cls(
            sequential=5,
            throughput_s=1.0,
            held=(10,),
            idle=(20,),
            cancels=3,
            runs_rounds=1,
            resumes=5,
            peer_rounds=1,
            peer_throughput_s=1.0,
            peer_cpu_requests=3,
            peer_burst=20,
            peer_held=(20,),
        )

    @classmethod
    def full(cls) -> Profile:
        return cls(
            sequential=300,
            throughput_s=15.0,
            concurrency=(10, 100),
            held=(100, 500, 1000),
            idle=(1000, 5000),
            cancels=100,
            runs_rounds=3,
            resumes=500,
            peer_throughput_s=10.0,
            peer_cpu_requests=100,
            peer_held_rounds=3,
        )


@dataclass
class Target:
    """A server under test plus what a client needs to talk to it."""

    server: Server
    sse_path: str
    ws_path: str
    tokens: list[str | None] = field(default_factory=lambda: [None])
    health: str = "/health"

    def job(self, kind: str, **extra: Any) -> dict[str, Any]:
        return {
            "kind": kind,
            "url": self.server.url,
            "path": self.sse_path,
            "ws_url": self.server.ws_base + self.ws_path,
            "body": BODY,
            "tokens": self.tokens,
            **extra,
        }


def agentstream_server(name: str, delay_ms: float, env: dict[str, str]) -> Server:
    return Server(
        name,
        [sys.executable, "-m", "agentstream", "serve", "--port", "{port}"],
        {
            "AGENTSTREAM_DEMO_TOKEN_DELAY_MS": str(delay_ms),
            "AGENTSTREAM_RATE_LIMIT_CHAT": "0",
            "AGENTSTREAM_RATE_LIMIT_API": "0",
            "AGENTSTREAM_RATE_LIMIT_AUTH": "0",
            "AGENTSTREAM_RATE_LIMIT_WS_CONNECT": "0",
            # The scenarios put up to 100 streams per user in flight; the cap is measured
            # on its own (bench/runs.py).
            "AGENTSTREAM_MAX_ACTIVE_RUNS_PER_USER": "0",
            "AGENTSTREAM_LOG_LEVEL": "WARNING",
            "AGENTSTREAM_JWT_SECRET": "bench-" + "k" * 32,
            "PYDANTIC_AI_NO_BANNER": "1",
            **env,
        },
    )


def reference_server(delay_ms: float, tokens: int = 100) -> Server:
    return Server(
        "reference",
        [
            sys.executable,
            *("-m", "bench.reference", "--port", "{port}"),
            *("--delay-ms", str(delay_ms), "--tokens", str(tokens)),
        ],
    )


def peer_server(delay_ms: float, upstream: dict[str, str] | None = None) -> Server:
    """The pydantic-ai peer on the demo model or, given the upstream's ``OPENAI_*`` variables,
    on ``openai:story`` (paced by the upstream: ``story-<delay>ms``)."""
    argv = [sys.executable, "-m", "bench.peer", "--port", "{port}", "--delay-ms", str(delay_ms)]
    if upstream is None:
        return Server("peer", argv, {"PYDANTIC_AI_NO_BANNER": "1"})
    model = "openai:story" + (f"-{delay_ms:g}ms" if delay_ms else "")
    env = {"PYDANTIC_AI_NO_BANNER": "1", **upstream}
    return Server("peer-openai", [*argv, "--model", model], env)


def prepare_agentstream(
    server: Server, accounts: int, *extra_agents: dict[str, Any] | None
) -> list[str | None]:
    """Register ``accounts`` users (one team each) with a 100-token demo agent (and
    ``extra_agents``); their tokens."""
    tokens: list[str | None] = []
    with httpx.Client(base_url=server.url, timeout=60) as http:
        for _ in range(accounts):
            email = f"bench-{uuid.uuid4().hex[:10]}@example.com"
            reg = http.post("/v1/auth/register", json={"email": email, "password": "bench-pass"})
            token = reg.json()["access_token"]
            headers = {"Authorization": f"Bearer {token}"}
            agent = {
                "slug": "bench",
                "name": "Bench",
                "model": "demo",
                "settings": {"max_tokens": 100},
            }
            http.post("/v1/agents", json=agent, headers=headers).raise_for_status()
            for extra in extra_agents:
                if extra:
                    http.post("/v1/agents", json=extra, headers=headers).raise_for_status()
            tokens.append(token)
    return tokens


def agentstream_target(server: Server, tokens: list[str | None]) -> Target:
    return Target(server, ADVANCED, "/v1/agents/bench/ws", tokens)


def reference_target(server: Server) -> Target:
    return Target(server, "/stream", "/ws", health="/stream")


# ----------------------------------------------------------------------------- scenarios
def overhead(target: Target, profile: Profile) -> dict[str, Any]:
    run_loadgen(target.job("sequential", requests=5))  # warm up lazy imports and caches
    return run_loadgen(target.job("sequential", requests=profile.sequential))


def throughput(
    target: Target, profile: Profile, transport: str, concurrency: int
) -> dict[str, Any]:
    before = target.server.cpu_s()
    result = run_loadgen(
        target.job(
            "throughput",
            transport=transport,
            concurrency=concurrency,
            duration_s=profile.throughput_s,
        )
    )
    result["server_cpu_s"] = target.server.cpu_s() - before
    result["events_per_s"] = result["events"] / result["elapsed_s"]
    result["streams_per_s"] = result["ok"] / result["elapsed_s"]
    return result


def held(target: Target, streams: int) -> dict[str, Any]:
    before_cpu, before_rss = target.server.cpu_s(), target.server.rss_mb()
    result = run_loadgen(target.job("held", streams=streams), timeout_s=900)
    result["server_cpu_s"] = target.server.cpu_s() - before_cpu
    result["server_rss_mb"] = target.server.rss_mb()
    result["server_rss_growth_mb"] = result["server_rss_mb"] - before_rss
    return result


def idle_ws(target: Target, connections: int) -> dict[str, Any]:
    before = target.server.rss_mb()
    sockets = IdleSockets(target.job("idle_ws", connections=connections))
    try:
        opened = sockets.wait_ready()
        after = target.server.rss_mb()
    finally:
        sockets.close()
    return {
        "opened": opened,
        "rss_before_mb": before,
        "rss_after_mb": after,
        "kib_per_connection": (after - before) * 1024 / max(opened, 1),
    }


def cancel(target: Target, profile: Profile, upstream: Server | None) -> dict[str, Any]:
    result = run_loadgen(target.job("cancel", iterations=profile.cancels))
    if upstream is not None:
        closes = httpx.get(upstream.url + "/_closes", timeout=10).json()
        # Pair each cancel with the first upstream close after it.
        upstream_s = []
        for instant in result["cancelled_at"]:
            later = [c for c in closes if c >= instant]
            if later:
                upstream_s.append(min(later) - instant)
        result["to_upstream_closed_s"] = upstream_s
    return result


def machine() -> dict[str, str]:
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            cpu = next(
                (ln.split(":", 1)[1].strip() for ln in info if ln.startswith("model name")), cpu
            )
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "python": sys.version.split()[0],
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
