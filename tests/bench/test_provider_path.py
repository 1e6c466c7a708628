"""The provider-path bench: its upstream streams the demo story as Chat Completions chunks (capped
like a real server), the load generator measures inter-token gaps, and the report judges the
issue-19 goals from the numbers it is given."""

from __future__ import annotations

import asyncio
import json

import httpx

from agentstream.llm.demo import story_tokens
from bench.client import StreamResult
from bench.loadgen import _gaps
from bench.report_provider import provider_goals
from bench.upstream import _Connection


async def _stream(max_tokens: int | None) -> list[dict[str, object]]:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(_Connection, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    body: dict[str, object] = {"model": "story", "stream": True}
    body["stream_options"] = {"include_usage": True}
    if max_tokens is not None:
        body["max_completion_tokens"] = max_tokens
    try:
        async with httpx.AsyncClient() as http:
            url = f"http://127.0.0.1:{port}/v1/chat/completions"
            response = await http.post(url, json=body)
    finally:
        server.close()
    frames = [f.removeprefix("data: ") for f in response.text.split("\n\n") if f]
    assert frames[-1] == "[DONE]"
    return [json.loads(f) for f in frames[:-1]]


async def test_upstream_streams_the_story_capped_by_max_tokens_with_usage() -> None:
    whole, capped = await _stream(None), await _stream(100)
    text = "".join(
        str(c["choices"][0]["delta"].get("content", ""))  # type: ignore[index]
        for c in whole
        if c["choices"]
    )
    assert text == "".join(story_tokens())
    contents = [c for c in capped if c["choices"] and c["choices"][0]["delta"].get("content")]  # type: ignore[index]
    assert len(contents) == 100
    assert capped[-1]["usage"] == {
        "prompt_tokens": 12,
        "completion_tokens": 100,
        "total_tokens": 112,
    }
    assert capped[-2]["choices"][0]["finish_reason"] == "stop"  # type: ignore[index]


def test_gaps_are_measured_between_tokens_of_one_stream_over_all_streams() -> None:
    results = [
        StreamResult(True, 0.1, 1.0, 5, gaps_s=[0.05] * 98 + [0.2, 0.3]),
        StreamResult(False, 0.1, 1.0, 5, gaps_s=[9.0]),  # a failed stream does not count
    ]
    gaps = _gaps(results)
    assert gaps["count"] == 100
    assert gaps["p50"] == 0.05
    assert gaps["p99"] == 0.2
    assert gaps["p99.9"] == 0.3


def _side(**values: float) -> dict[str, float]:
    return values


def test_goals_hold_agentstream_to_a_fraction_of_the_peer() -> None:
    held = {"ok": 200, "failed": 0, "done_p50_s": 10.5, "first_p99_s": 0.2, "gap_p99_s": 0.09}
    results = {
        "profile": {"peer_held": [200], "peer_held_delay_ms": 50.0},
        "provider:throughput:1:peer": _side(streams_per_s=4.0),
        "provider:throughput:1:sqlite": _side(streams_per_s=10.0),  # 2.5×: met
        "provider:throughput:1:postgres": _side(streams_per_s=9.0),  # 2.25×: not
        "provider:cpu:peer": _side(per_token_s=200e-6),
        "provider:cpu:sqlite": _side(per_token_s=45e-6),  # ≤ 50 µs and 0.225×: met
        "provider:cpu:postgres": _side(per_token_s=55e-6),  # over 50 µs: not
        "provider:held:200:peer": {**held, "first_p99_s": 0.5, "gap_p99_s": 0.5},
        "provider:held:200:sqlite": held,  # first event 0.4× the peer's: met
        "provider:held:200:postgres": {**held, "gap_p99_s": 0.15},  # gap over 100 ms: not
    }
    verdicts = [
        line.rsplit("|", 2)[-2].strip() for line in provider_goals(results).splitlines()[2:]
    ]
    assert verdicts == ["met", "**NOT met**"] * 3
