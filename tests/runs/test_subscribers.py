"""A run's subscribers each wait on a wake-up of their own: one that idles (keep-alives) or
goes away leaves nothing behind, and the others still get every event."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from agentstream.chat import events as ev
from agentstream.runs.limits import MemoryActiveRuns
from agentstream.runs.reading import Batches
from agentstream.runs.registry import RunControl, RunRegistry
from tests.runs.test_run_log_property import _identity

IDLE_S = 0.001  # a keep-alive (an empty batch) per millisecond of silence


async def _forever(batches: Batches) -> None:
    async for _ in batches:
        pass


async def test_idle_and_departed_subscribers_leave_no_waiters_behind() -> None:
    registry = RunRegistry(MemoryActiveRuns(), max_per_user=0, retain_s=60)
    identity = _identity()
    release = asyncio.Event()

    async def produce(_: RunControl) -> AsyncIterator[ev.ChatEvent]:
        yield ev.TextDelta(content="hello ")
        await release.wait()  # a long silence: a slow tool, a queued turn
        yield ev.TextDelta(content="world")
        yield ev.Done(
            conversation_id=identity.conversation_id,
            message_id=identity.run_id,
            usage=ev.Usage(model="scripted"),
            status="complete",
        )

    run = registry.start(identity, produce, "continue", await registry.reserve(identity.user_id))
    leaving = asyncio.create_task(_forever(run.subscribe(0, idle_s=IDLE_S)))
    texts: list[str] = []
    keepalives = 0
    async with asyncio.timeout(10):
        async for batch in run.subscribe(0, idle_s=IDLE_S):
            texts += [e.content for e in batch if isinstance(e, ev.TextDelta)]
            if batch:
                continue
            keepalives += 1
            # Many keep-alives in: only the other subscriber may be waiting (this one isn't).
            assert run.waiting <= 1
            if keepalives == 50:
                leaving.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await leaving
                assert run.waiting == 0  # the one that left took its wake-up with it
                release.set()
    assert texts == ["hello ", "world"]  # the other's leaving cost this one nothing
    await run.task
