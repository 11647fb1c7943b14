"""`cancel_within`: a background task ends when stopped, even one that lost a cancellation."""

from __future__ import annotations

import asyncio

import pytest

from mrwbus.bus.stopping import cancel_within


async def test_a_task_that_swallows_a_cancellation_is_cancelled_again() -> None:
    swallowed = asyncio.Event()

    async def stubborn() -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            swallowed.set()  # as a library racing its own timeout may do
        await asyncio.sleep(3600)

    task = asyncio.create_task(stubborn())
    await asyncio.sleep(0)
    await cancel_within(task, grace=10)
    assert swallowed.is_set() and task.cancelled()


async def test_a_task_that_never_ends_is_left_after_the_grace(
    caplog: pytest.LogCaptureFixture,
) -> None:
    deafness = [True]

    async def deaf() -> None:
        while deafness[0]:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                continue

    task = asyncio.create_task(deaf())
    await asyncio.sleep(0)
    await cancel_within(task, grace=0.2)
    assert not task.done()
    assert "did not end within 0.2 s" in caplog.text
    deafness[0] = False  # leave nothing running for the next test
    task.cancel()
    await asyncio.wait({task})
