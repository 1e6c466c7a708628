"""New streams first: running streams pause their tokens while a stream is being set up."""

from __future__ import annotations

import asyncio

import pytest

from agentstream.kit.priority import SetupFirst


async def test_give_way_returns_at_once_when_nothing_is_being_set_up() -> None:
    gate = SetupFirst(max_pause_s=60)
    step = gate.give_way()
    with pytest.raises(StopIteration):  # it finished on its first step, never suspending
        step.send(None)


async def test_give_way_waits_until_every_setup_is_done() -> None:
    gate = SetupFirst(max_pause_s=60)
    with gate.setup():
        with gate.setup():
            waiting = asyncio.create_task(gate.give_way())
            await asyncio.sleep(0)
            assert not waiting.done()
        await asyncio.sleep(0)
        assert not waiting.done()  # one setup is still going on
    await asyncio.wait_for(waiting, timeout=1)
    assert gate.setting_up == 0


async def test_give_way_pauses_at_most_max_pause() -> None:
    gate = SetupFirst(max_pause_s=0.01)
    loop = asyncio.get_running_loop()
    with gate.setup():  # a setup that does not end while the stream waits
        started = loop.time()
        await asyncio.wait_for(gate.give_way(), timeout=1)
        assert loop.time() - started >= 0.005  # it did pause, and then went on
        assert gate.setting_up == 1


async def test_a_cancelled_waiter_does_not_cancel_the_others() -> None:
    gate = SetupFirst(max_pause_s=60)
    with gate.setup():
        first = asyncio.create_task(gate.give_way())
        second = asyncio.create_task(gate.give_way())
        await asyncio.sleep(0)
        first.cancel()
        await asyncio.sleep(0)
    await asyncio.wait_for(second, timeout=1)
    assert first.cancelled()
