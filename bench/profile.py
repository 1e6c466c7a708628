"""Profile chat requests in-process (pyinstrument) and split the time by layer."""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
from pydantic_ai import Agent
from pydantic_ai.settings import ModelSettings
from pyinstrument import Profiler
from pyinstrument.frame import Frame

from agentstream.app import build_state, create_app
from agentstream.auth.deps import authenticate
from agentstream.chat.prepare import PreparedRun, prepare
from agentstream.chat.schemas import ChatRequest
from agentstream.conversations.turns import TurnOutcome
from agentstream.llm.demo import build_demo_model
from agentstream.migrations import upgrade
from agentstream.models import MessageStatus
from agentstream.settings import Settings
from agentstream.state import AppState
from bench.peer import PROMPT
from bench.peer import build_app as build_peer

# Walking up from the frame that spent the time, the first match names the layer.
CATEGORIES: list[tuple[str, tuple[str, ...]]] = [
    ("database", ("sqlalchemy", "aiosqlite", "asyncpg", "sqlite3", "agentstream/db.py")),
    ("auth", ("agentstream/auth", "/jwt/", "argon2")),
    ("memory", ("agentstream/memory",)),
    ("model", ("pydantic_ai", "pydantic_graph", "agentstream/llm")),
    ("encoding", ("agentstream/streaming", "agentstream/chat/events.py", "orjson")),
    ("chat flow", ("agentstream/chat",)),
    ("framework", ("fastapi", "starlette", "httpx", "h11")),
]

# The steps of one request for the fixed-CPU split: (name, path needles, function names).
PHASES: list[tuple[str, tuple[str, ...], tuple[str, ...]]] = [
    ("model", ("pydantic_ai", "pydantic_graph", "agentstream/llm"), ()),
    ("auth", ("agentstream/auth", "/jwt/", "agentstream/tenancy"), ()),
    ("prepare", ("agentstream/memory",), ("prepare", "start_run", "start_turn")),
    (
        "finalize+usage",
        ("agentstream/usage", "agentstream/conversations/writer"),
        ("finish", "finish_turn", "record_usage"),
    ),
    ("encoding", ("agentstream/streaming", "agentstream/chat/events.py", "orjson"), ()),
    ("client", ("/httpx/", "/httpx2/"), ()),
    ("chat flow", ("agentstream/",), ()),
    # anyio is not here: its time belongs to whoever uses it (pydantic-ai, mostly).
    ("framework", ("fastapi", "starlette", "uvicorn", "h11"), ()),
]
FIXED = ("auth", "prepare", "finalize+usage")
# Goal 3: at most 3 ms of CPU per stream for these, each timed alone (``_steps_alone``).
SHORT = 100  # tokens of the profiled reply
STEP_CALLS = 200  # calls of each fixed step timed alone (each costs about a millisecond)
STORY = 492  # the demo's whole story, uncapped


def _category(frame: Frame | None) -> str:
    while frame is not None:
        path = frame.file_path or ""
        for name, needles in CATEGORIES:
            if any(needle in path for needle in needles):
                return name
        frame = frame.parent
    return "other (asyncio, interpreter)"


def _phase(frame: Frame | None) -> str:
    """The step of a chat request the time belongs to (first match walking up)."""
    while frame is not None:
        path, function = frame.file_path or "", frame.function or ""
        for name, needles, functions in PHASES:
            if function in functions or any(needle in path for needle in needles):
                return name
        frame = frame.parent
    return "event loop, DB greenlets"  # no caller on the stack: asyncio, SQLAlchemy greenlets


def _walk(frame: Frame, totals: dict[str, float], key: Callable[[Frame], str]) -> None:
    if frame.total_self_time:
        name = key(frame)
        totals[name] = totals.get(name, 0.0) + frame.total_self_time
    for child in frame.children:
        _walk(child, totals, key)


@asynccontextmanager
async def _agentstream() -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, str], AppState]]:
    """agentstream in process on a fresh SQLite database, with the ``bench`` (100-token) and
    ``story`` (uncapped) demo agents; an ASGI client, the auth headers and the app state."""
    data = Path(tempfile.mkdtemp(prefix="agentstream-profile-"))
    url = f"sqlite+aiosqlite:///{data / 'profile.db'}"
    await asyncio.to_thread(upgrade, url)
    settings = Settings(
        database_url=url,
        data_dir=data,
        jwt_secret="profile-" + "x" * 32,
        demo_token_delay_ms=0,
        rate_limit_chat=0,
        rate_limit_api=0,
        rate_limit_auth=0,
        log_level="WARNING",
    )
    async with build_state(settings) as state:
        app = create_app(settings)
        app.state.agentstream = state
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as http:
            reg = await http.post(
                "/v1/auth/register", json={"email": "p@example.com", "password": "profile-pw"}
            )
            headers = {"Authorization": f"Bearer {reg.json()['access_token']}"}
            for slug, settings_ in (("bench", {"max_tokens": SHORT}), ("story", {})):
                agent = {"slug": slug, "name": slug, "model": "demo", "settings": settings_}
                (await http.post("/v1/agents", json=agent, headers=headers)).raise_for_status()
            yield http, headers, state


async def _profile(requests: int, out_dir: Path) -> dict[str, Any]:
    async with _agentstream() as (http, headers, _):
        body = {"message": "tell me a long story"}
        path = "/v1/agents/bench/chat/stream/advanced"
        await http.post(path, json=body, headers=headers)  # warm caches
        profiler = Profiler(interval=0.0002, async_mode="disabled")
        profiler.start()
        for _ in range(requests):
            await http.post(path, json=body, headers=headers)
        profiler.stop()
    session = profiler.last_session
    assert session is not None
    root = session.root_frame()
    totals: dict[str, float] = {}
    phases: dict[str, float] = {}
    if root is not None:
        _walk(root, totals, _category)
        _walk(root, phases, _phase)
    (out_dir / "profile.txt").write_text(profiler.output_text(unicode=False, color=False))
    whole = sum(totals.values()) or 1.0
    return {
        "requests": requests,
        "per_request_ms": {k: v * 1000 / requests for k, v in totals.items()},
        "share": {k: v / whole for k, v in totals.items()},
        "phase_share": {k: v / whole for k, v in phases.items()},
    }


def profile_requests(requests: int, out_dir: Path) -> dict[str, Any]:
    """Profile ``requests`` advanced-SSE chats (100 tokens, zero delay) on SQLite."""
    out_dir.mkdir(parents=True, exist_ok=True)
    return asyncio.run(_profile(requests, out_dir))


async def _per_request(
    send: Callable[..., Awaitable[object]], requests: int, *args: Any, **kwargs: Any
) -> float:
    """CPU seconds per ``send(*args, **kwargs)`` over ``requests`` sequential ones (after one
    to warm up)."""
    await send(*args, **kwargs)
    start = time.process_time()
    for _ in range(requests):
        await send(*args, **kwargs)
    return (time.process_time() - start) / requests


async def _steps_alone(state: AppState, headers: dict[str, str], requests: int) -> dict[str, float]:
    """CPU seconds per call of each fixed step, each called alone (``process_time`` over
    ``requests`` calls, one at a time, nothing else running): authentication, prepare (the
    agent, the turn's rows, the memory search) and the final write (reply, run, usage row)."""
    token = headers["Authorization"].removeprefix("Bearer ")
    principal = await authenticate(state, token, None)
    out = {"auth": await _per_request(authenticate, requests, state, token, None)}
    prepared: list[PreparedRun] = []

    async def one_prepare() -> None:
        prepared.append(await prepare(state, principal, "bench", ChatRequest(message=PROMPT)))

    out["prepare"] = await _per_request(one_prepare, requests)
    outcome = TurnOutcome(
        content=" word" * SHORT,
        status=MessageStatus.complete,
        tool_calls=[],
        usage={"input_tokens": 10, "output_tokens": SHORT, "total_tokens": SHORT + 10},
        input_tokens=10,
        output_tokens=SHORT,
        duration_ms=1,
        last_seq=SHORT + 4,
    )
    runs = iter(prepared)

    async def one_finish() -> None:
        await state.writer.finish(next(runs).identity, outcome)

    out["finalize+usage"] = await _per_request(one_finish, requests)
    return out


async def _fixed_cpu(requests: int) -> dict[str, Any]:
    body = {"message": PROMPT}
    out: dict[str, Any] = {}
    async with _agentstream() as (http, headers, state):
        for slug, tokens in (("bench", SHORT), ("story", STORY)):
            path = f"/v1/agents/{slug}/chat/stream/advanced"
            out[f"agentstream_{tokens}_s"] = await _per_request(
                http.post, requests, path, json=body, headers=headers
            )
        out["steps_s"] = await _steps_alone(state, headers, STEP_CALLS)
        out["step_calls"] = STEP_CALLS
    peer = httpx.ASGITransport(app=build_peer(0))
    async with httpx.AsyncClient(transport=peer, base_url="http://peer") as http:
        for tokens, query in ((SHORT, f"?max_tokens={SHORT}"), (STORY, "")):
            out[f"peer_{tokens}_s"] = await _per_request(
                http.post, requests, "/stream" + query, json=body
            )
    agent: Agent[None, str | None] = Agent(build_demo_model(0), output_type=[str, type(None)])

    async def alone(tokens: int) -> None:
        settings = ModelSettings(max_tokens=tokens)
        async with agent.iter(PROMPT, model_settings=settings) as run:
            async for node in run:
                if Agent.is_model_request_node(node) or Agent.is_call_tools_node(node):
                    async with node.stream(run.ctx) as stream:
                        async for _ in stream:
                            pass

    for tokens in (SHORT, STORY):
        out[f"model_{tokens}_s"] = await _per_request(alone, requests, tokens)
    return out


def fixed_cpu(requests: int) -> dict[str, Any]:
    """CPU per request (``process_time`` over ``requests`` sequential chats, in process, no
    profiler) at 100 and 492 tokens: agentstream on SQLite, the pydantic-ai peer's ``/stream``
    and pydantic-ai's ``Agent.iter`` alone over the same demo model. Both servers are driven
    by the same in-process httpx client, so its cost cancels out of their difference."""
    measured = asyncio.run(_fixed_cpu(requests))
    slope = {
        name: (measured[f"{name}_{STORY}_s"] - measured[f"{name}_{SHORT}_s"]) / (STORY - SHORT)
        for name in ("agentstream", "peer", "model")
    }
    return {"requests": requests, "short": SHORT, "long": STORY, **measured, "per_token_s": slope}
