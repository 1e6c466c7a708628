"""New streams first: running streams pause while a stream is set up, within a budget."""

from __future__ import annotations

import asyncio

import pytest

from agentstream.kit.priority import SetupFirst


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _returns_at_once(step: object) -> bool:
    """Whether a coroutine finishes on its first step, never suspending."""
    try:
        step.send(None)  # type: ignore[attr-defined]
    except StopIteration:
        return True
    step.close()  # type: ignore[attr-defined]
    return False


async def test_give_way_returns_at_once_when_nothing_is_being_set_up() -> None:
    gate = SetupFirst(max_pause_s=60, share=1000)
    pacer = gate.pacer()
    assert _returns_at_once(pacer.give_way())


async def test_give_way_waits_until_every_setup_is_done() -> None:
    gate = SetupFirst(max_pause_s=60, share=1000)
    pacer = gate.pacer()
    await asyncio.sleep(0.001)  # the stream has run a moment, so it has earned a pause
    with gate.setup():
        with gate.setup():
            waiting = asyncio.create_task(pacer.give_way())
            await asyncio.sleep(0)
            assert not waiting.done()
        await asyncio.sleep(0)
        assert not waiting.done()  # one setup is still going on
    await asyncio.wait_for(waiting, timeout=1)
    assert gate.setting_up == 0


async def test_give_way_pauses_at_most_max_pause() -> None:
    gate = SetupFirst(max_pause_s=0.01, share=1000)
    pacer = gate.pacer()
    await asyncio.sleep(0.001)
    with gate.setup():  # a setup that does not end while the stream waits
        await asyncio.wait_for(pacer.give_way(), timeout=1)
        assert pacer.paused_s > 0  # it did pause (and it counts), and then went on
        assert gate.setting_up == 1


async def test_a_stream_pauses_at_most_its_share_of_its_life() -> None:
    clock = Clock()
    gate = SetupFirst(max_pause_s=0.05, share=0.05, clock=clock)
    pacer = gate.pacer()
    with gate.setup():  # a setup that never ends
        assert _returns_at_once(pacer.give_way())  # just started: nothing earned yet
        clock.now += 0.4  # 0.4 s of streaming earns 20 ms
        assert pacer.allowance() == pytest.approx(0.02)
        pacer.paused_s = 0.02  # ... and once they are spent,
        assert _returns_at_once(pacer.give_way())  # it streams on without pausing
        clock.now += 10.0  # 10 s more: up to 500 ms more in all, but 50 ms at a time
        assert pacer.allowance() == pytest.approx(0.05)


async def test_a_setup_waiting_in_a_queue_does_not_hold_streams_back() -> None:
    gate = SetupFirst(max_pause_s=60, share=1000)
    pacer = gate.pacer()
    await asyncio.sleep(0.001)
    with gate.setup():
        with gate.parked():  # waiting for the write lock or a pooled connection
            assert gate.setting_up == 0
            with gate.parked():  # nested waits count once
                assert gate.setting_up == 0
            assert _returns_at_once(pacer.give_way())
        assert gate.setting_up == 1  # its turn came: it uses the loop again
    assert gate.setting_up == 0


async def test_a_stream_parked_after_a_pause_began_releases_the_waiters() -> None:
    gate = SetupFirst(max_pause_s=60, share=1000)
    pacer = gate.pacer()
    await asyncio.sleep(0.001)
    with gate.setup():
        waiting = asyncio.create_task(pacer.give_way())
        await asyncio.sleep(0)
        assert not waiting.done()
        with gate.parked():
            await asyncio.wait_for(waiting, timeout=1)


async def test_outside_a_setup_parked_changes_nothing() -> None:
    gate = SetupFirst()
    with gate.setup():
        pass
    with gate.parked():  # e.g. a checkpoint of the writer, queued for the write lock
        assert gate.setting_up == 0
    assert gate.setting_up == 0


async def test_a_cancelled_waiter_does_not_cancel_the_others() -> None:
    gate = SetupFirst(max_pause_s=60, share=1000)
    first_pacer, second_pacer = gate.pacer(), gate.pacer()
    await asyncio.sleep(0.001)
    with gate.setup():
        first = asyncio.create_task(first_pacer.give_way())
        second = asyncio.create_task(second_pacer.give_way())
        await asyncio.sleep(0)
        first.cancel()
        await asyncio.sleep(0)
    await asyncio.wait_for(second, timeout=1)
    assert first.cancelled()
