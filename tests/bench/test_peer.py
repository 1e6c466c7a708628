"""The benchmark's pydantic-ai peer streams the same reply agentstream does, and the report
judges the issue-12 goals from the numbers it is given."""

from __future__ import annotations

import json

import httpx

from bench.peer import VERCEL_BODY, build_app
from bench.peers import STORY_TOKENS
from bench.report_peers import peers_goals


def _frames(body: str) -> list[str]:
    return [f.removeprefix("data: ") for f in body.split("\n\n") if f.startswith("data: ")]


async def test_peer_streams_the_whole_story_as_text_deltas_then_done() -> None:
    transport = httpx.ASGITransport(app=build_app(0))
    async with httpx.AsyncClient(transport=transport, base_url="http://peer") as http:
        whole = await http.post("/stream", json={"message": "tell me a long story"})
        capped = await http.post("/stream?max_tokens=100", json={"message": "a long story"})
    frames = [json.loads(f) for f in _frames(whole.text)]
    assert sum(f["type"] == "text_delta" for f in frames) == STORY_TOKENS
    assert frames[-1]["type"] == "done"
    assert frames[-1]["status"] == "complete"
    assert sum('"text_delta"' in f for f in _frames(capped.text)) == 100


async def test_vercel_peer_answers_a_submit_message_with_a_finished_ui_stream() -> None:
    transport = httpx.ASGITransport(app=build_app(0))
    async with httpx.AsyncClient(transport=transport, base_url="http://peer") as http:
        response = await http.post("/vercel", json=VERCEL_BODY)
    frames = _frames(response.text)
    assert json.loads(frames[0])["type"] == "start"
    assert sum('"text-delta"' in f for f in frames) == STORY_TOKENS
    assert '"type":"finish"' in frames[-2].replace(" ", "")
    assert frames[-1] == "[DONE]"


def _side(streams_per_s: float, first_p99_s: float) -> dict[str, float]:
    return {"streams_per_s": streams_per_s, "first_p99_s": first_p99_s}


def test_goals_compare_each_configuration_with_the_peer() -> None:
    results = {
        "profile": {"peer_burst": 200, "peer_held": []},
        "peers:throughput:1:peer": _side(10.0, 0.010),
        "peers:throughput:1:sqlite": _side(9.5, 0.012),
        "peers:throughput:10:peer": _side(10.0, 0.100),
        "peers:throughput:10:sqlite": _side(8.0, 0.250),
        "peers:stored:sqlite": {"sent": 5, "ok": 5, "assistant_messages": 5, "complete": 4},
    }
    rows = {line.split(" | ")[0].lstrip("| "): line for line in peers_goals(results).splitlines()}
    assert rows["1. streams/s, SQLite, 1 client(s)"].endswith("| met |")
    assert rows["1. streams/s, SQLite, 10 client(s)"].endswith("| **NOT met** |")
    assert "2.50×" in rows["2. first event p99, SQLite, 10 clients"]
    assert rows["2. first event p99, SQLite, 10 clients"].endswith("| **NOT met** |")
    assert rows["5. nothing lost, SQLite"].endswith("| **NOT met** |")
