"""`mrwbus simulate` and the service agree: the same scenario, the same events, in order."""

from __future__ import annotations

import asyncio

import pytest

from mrwbus import cli
from mrwbus.config.loading import parse_config
from mrwbus.messages import Event, utc_now
from tests.integration.broker import BusProbe
from tests.integration.conftest import RunningService
from tests.scenarios import ladder

pytestmark = pytest.mark.broker


async def events_of(queue: asyncio.Queue[Event], fault_id: str, count: int) -> list[Event]:
    """The next `count` events the service published for `fault_id` (others are skipped)."""
    found: list[Event] = []
    while len(found) < count:
        event = await asyncio.wait_for(queue.get(), 10)
        if event.fault_id == fault_id:
            found.append(event)
    return found


async def test_simulate_and_the_service_give_the_same_events(
    start_service: RunningService, probe: BusProbe, amqp_url: str
) -> None:
    config = parse_config(ladder.CONFIG, "scenario.yaml")
    expected = ladder.simulated(config, utc_now())
    service = await start_service(ladder.CONFIG)
    queue = service.events.listen()
    got: dict[str, list[Event]] = {}
    for step in ladder.steps():
        await asyncio.sleep(step.wait.total_seconds())
        if step.control is not None:
            request = step.control
            argv = [request.verb.value, request.monitor or "", "--amqp-url", amqp_url]
            assert await asyncio.to_thread(cli.main, argv) == 0
        else:
            assert step.fault is not None
            await probe.publish(step.fault)
            got[step.fault.id] = await events_of(queue, step.fault.id, len(expected[step.fault.id]))
    await asyncio.sleep(1)  # anything more for these faults would be there by now
    while not queue.empty():
        assert queue.get_nowait().fault_id not in ladder.fault_ids()

    for fault_id in ladder.fault_ids():
        assert ladder.comparable(got[fault_id]) == ladder.comparable(expected[fault_id]), fault_id
    for fault_id, code in ladder.EXPECTED_CODES.items():
        assert code in [event.code for event in got[fault_id]]
