"""Supervised relay tasks: a failure is logged with its cause, counted, shown as last_error, and
the task starts again; a stop ends the supervision during a run or a wait."""

from __future__ import annotations

import asyncio

import pytest

from mrwbus.bus.supervise import Supervision, doubling, fixed


def test_the_restart_delay_doubles_from_a_fifth_of_a_second_to_five() -> None:
    assert [doubling(n) for n in range(1, 8)] == [0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0]


async def test_a_failed_task_is_logged_counted_shown_and_started_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    supervision = Supervision()
    stop = asyncio.Event()
    runs = 0

    async def flaky() -> None:
        nonlocal runs
        runs += 1
        if runs <= 2:
            raise OSError(f"netlink socket broke ({runs})")
        await stop.wait()

    task = asyncio.create_task(supervision.supervise("nic", flaky, stop, fixed(0.01)))
    while runs < 3:
        await asyncio.sleep(0.01)
    assert supervision.failures["nic"] == 2
    assert supervision.up["nic"] is True
    assert supervision.health.last_error == (
        "nic failed (OSError: netlink socket broke (2)); starting it again in 0.01s"
    )
    failures = [r for r in caplog.records if r.getMessage().startswith("nic failed")]
    assert len(failures) == 2 and all(r.exc_info for r in failures)
    stop.set()
    await asyncio.wait_for(task, 5)


async def test_a_task_that_ends_by_itself_counts_as_failed_and_a_stop_ends_the_wait() -> None:
    supervision = Supervision()
    stop = asyncio.Event()

    async def quits() -> None:
        return None

    task = asyncio.create_task(supervision.supervise("debounce", quits, stop, fixed(3600)))
    while not supervision.failures["debounce"]:
        await asyncio.sleep(0.01)
    assert supervision.up["debounce"] is False
    assert "it ended" in (supervision.health.last_error or "")
    stop.set()
    await asyncio.wait_for(task, 5)  # not after the hour's wait
