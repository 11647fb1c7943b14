"""The service's half of the closed loop, with the test playing the agents on the real broker."""

from __future__ import annotations

import asyncio

import aio_pika
import pytest

from mrwbus.bus.topology import RESULTS
from mrwbus.messages import (
    Action,
    AgentReport,
    CommandStep,
    FinalAction,
    Outcome,
    ReportReason,
    new_id,
    utc_now,
)
from mrwbus.relay import make_fault
from tests.integration.broker import BusProbe
from tests.integration.conftest import RunningService

pytestmark = pytest.mark.broker

CLUSTER = """
servers:
  server1: {server_group: site-a}
  server2: {server_group: site-a}
  server3: {server_group: site-b}
security: {verify_senders: false}
groups:
  failover1: {servers: [server1, server2, server3], resources: [app1]}
service:
  stop_timeout: 1s
  start_timeout: 2s
  heartbeat_timeout: 1s
agent: {heartbeat_interval: 0.5}
monitors:
  mrw1:
    category: NIC
    recovery: {action: failover, target: failover1, max_failovers: 5, fence_first: FENCE, final_action: bmc_power_off}
"""


def cluster(fence_first: bool = False) -> str:
    return CLUSTER.replace("FENCE", "true" if fence_first else "false")


async def report(probe: BusProbe, server: str, *groups: str) -> None:
    message = AgentReport(
        id=new_id(),
        server=server,
        active_groups=list(groups),
        reason=ReportReason.HEARTBEAT,
        heartbeat_interval=0.5,
        sent_at=utc_now(),
    )
    await probe.exchanges[RESULTS].publish(aio_pika.Message(message.to_body()), message.routing_key)


async def test_source_that_never_answers_keeps_the_group(
    start_service: RunningService, probe: BusProbe
) -> None:
    service = await start_service(cluster())
    await probe.publish(make_fault("server1", "NIC", "eth0"))
    (stop,) = await probe.next_commands(1)
    assert stop.step is CommandStep.STOP
    event = await probe.wait_event("MRW-310", timeout=5)
    assert "NOT started elsewhere" in event.text
    await probe.no_more_commands(1.0)
    assert service.cluster.view.placement["failover1"] == "server1"


async def test_a_failed_stop_does_not_start_elsewhere(
    start_service: RunningService, probe: BusProbe
) -> None:
    await start_service(cluster())
    await probe.publish(make_fault("server1", "NIC", "eth0"))
    (stop,) = await probe.next_commands(1)
    await probe.answer(stop, Outcome.FAILED, "umount busy")
    await probe.wait_event("MRW-310")
    await probe.no_more_commands(1.0)


async def test_fence_first_fences_then_starts(
    start_service: RunningService, probe: BusProbe
) -> None:
    service = await start_service(cluster(fence_first=True))
    await probe.publish(make_fault("server1", "NIC", "eth0"))
    (stop,) = await probe.next_commands(1)
    assert stop.step is CommandStep.STOP  # never answered
    (fence,) = await probe.next_commands(1, timeout=5)  # after the 1 s stop timeout
    assert (fence.server, fence.action, fence.final_action) == (
        "server1",
        Action.FINAL_ACTION,
        FinalAction.BMC_POWER_OFF,
    )
    await probe.no_more_commands()
    await probe.answer(fence)
    (start,) = await probe.next_commands(1)
    assert (start.server, start.step) == ("server2", CommandStep.START)
    await probe.answer(start)
    await probe.wait_event("MRW-320")
    assert service.cluster.view.placement["failover1"] == "server2"


async def test_failed_start_moves_on_to_the_next_server(
    start_service: RunningService, probe: BusProbe
) -> None:
    service = await start_service(cluster())
    await probe.publish(make_fault("server1", "NIC", "eth0"))
    (stop,) = await probe.next_commands(1)
    await probe.answer(stop)
    (start2,) = await probe.next_commands(1)
    assert start2.server == "server2"
    await probe.answer(start2, Outcome.FAILED, "fip already in use")
    await probe.wait_event("MRW-313")
    (start3,) = await probe.next_commands(1)
    assert (start3.server, start3.step, start3.to_server) == (
        "server3",
        CommandStep.START,
        "server3",
    )
    await probe.answer(start3, Outcome.FAILED)
    event = await probe.wait_event("MRW-314")
    assert "could not be started anywhere" in event.text
    assert service.cluster.view.placement["failover1"] is None


async def test_silent_server_is_no_destination(
    start_service: RunningService, probe: BusProbe
) -> None:
    service = await start_service(cluster())
    await report(probe, "server2")
    await report(probe, "server1", "failover1")
    silent = await probe.wait_event("MRW-601", server="server2", timeout=5)
    assert "no failover destination" in silent.text or "no heartbeat" in silent.text
    await report(probe, "server1", "failover1")  # server1 keeps beating
    await probe.publish(make_fault("server1", "NIC", "eth0"))
    (stop,) = await probe.next_commands(1)
    assert stop.to_server == "server3"
    assert "server2" not in service.cluster.view.alive


async def test_reports_tell_where_groups_run(
    start_service: RunningService, probe: BusProbe
) -> None:
    service = await start_service(cluster())
    for _ in range(100):  # asked right after the service starts consuming
        if len(probe.report_requests) == 3:
            break
        await asyncio.sleep(0.05)
    assert sorted(probe.report_requests) == ["server1.report", "server2.report", "server3.report"]
    await report(probe, "server1")
    await report(probe, "server3", "failover1")
    for _ in range(50):
        if service.cluster.view.placement["failover1"] == "server3":
            break
        await asyncio.sleep(0.05)
    assert service.cluster.view.placement["failover1"] == "server3"
    await probe.publish(make_fault("server1", "NIC", "eth0"))
    await probe.wait_event("MRW-301")  # no longer active on server1
    await probe.no_more_commands()
