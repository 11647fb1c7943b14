"""End to end on the real broker: faults in as a relay publishes them, exact commands out."""

from __future__ import annotations

import pytest

from mrwbus.bus.topology import ERROR_HEADER, FAULTS
from mrwbus.core.status import shown_status
from mrwbus.messages import Action, CommandStep, FinalAction
from mrwbus.relay import make_fault
from tests.integration.broker import BusProbe
from tests.integration.conftest import RunningService

pytestmark = pytest.mark.broker

CLUSTER = """
security: {verify_senders: false}
servers:
  server1: {server_group: site-a}
  server2: {server_group: site-a}
  server3: {server_group: site-b}
groups:
  failover1: {servers: [server1, server2, server3], resources: [fip1, app1]}
  failover2: {servers: [server2, server3, server1], resources: [db2]}
monitors:
"""


def cluster(monitors: str) -> str:
    return CLUSTER + monitors


NIC_FAILOVER = cluster("""
  mrw1:
    category: NIC
    keyword: eth0
    servers: {server1: {}, server2: {keyword: eth1}}
    recovery: {action: failover, target: failover1, max_failovers: 1, final_action: stop_group}
""")


async def test_keyword_match_fails_the_group_over(
    start_service: RunningService, probe: BusProbe
) -> None:
    await start_service(NIC_FAILOVER)
    fault = make_fault("server1", "NIC", "eth0", "link down")
    await probe.publish(fault)

    (stop,) = await probe.next_commands(1)
    assert (stop.action, stop.step, stop.server) == (Action.FAILOVER, CommandStep.STOP, "server1")
    await probe.no_more_commands()  # the start waits for the stop's confirmation
    await probe.answer(stop)
    (start,) = await probe.next_commands(1)
    assert (start.action, start.step, start.server) == (
        Action.FAILOVER,
        CommandStep.START,
        "server2",
    )
    for command in (stop, start):
        assert command.fault_id == fault.id
        assert command.monitor == "mrw1"
        assert command.group == "failover1"
        assert (command.from_server, command.to_server) == ("server1", "server2")
    await probe.no_more_commands()


async def test_another_device_matches_nothing_and_is_acked(
    start_service: RunningService, probe: BusProbe
) -> None:
    service = await start_service(NIC_FAILOVER)
    fault = make_fault("server1", "NIC", "eth5")
    await probe.publish(fault)

    unmatched = await probe.wait_event("MRW-110")
    assert unmatched.fault_id == fault.id
    await probe.no_more_commands()
    queue = await probe.channel.declare_queue(FAULTS, passive=True)
    assert queue.declaration_result.message_count == 0
    assert service.cluster.state_of("mrw1", "server1").faults == 0


async def test_per_server_keyword_override(start_service: RunningService, probe: BusProbe) -> None:
    await start_service(
        cluster("""
  mrw1:
    category: NIC
    keyword: eth0
    servers: {server1: {}, server2: {keyword: eth1}}
    recovery: {action: restart, target: failover2}
""")
    )
    await probe.publish(make_fault("server2", "NIC", "eth0"))  # the common keyword: not on server2
    await probe.wait_event("MRW-110")
    await probe.no_more_commands()

    fault = make_fault("server2", "NIC", "eth1")
    await probe.publish(fault)
    (restart,) = await probe.next_commands(1)
    assert (restart.action, restart.server, restart.group, restart.fault_id) == (
        Action.RESTART,
        "server2",
        "failover2",
        fault.id,
    )
    await probe.no_more_commands()


async def test_a_server_that_does_not_monitor(
    start_service: RunningService, probe: BusProbe
) -> None:
    await start_service(NIC_FAILOVER)
    await probe.publish(make_fault("server3", "NIC", "eth0"))
    await probe.wait_event("MRW-110", server="server3")
    await probe.no_more_commands()


async def test_empty_keyword_matches_any_device_and_restarts(
    start_service: RunningService, probe: BusProbe
) -> None:
    await start_service(
        cluster("""
  mrw2:
    category: FC
    recovery: {action: restart, target: app1, max_restarts: 1, final_action: stop_group}
""")
    )
    fault = make_fault("server1", "FC", "fc-hba-7")
    await probe.publish(fault)
    (restart,) = await probe.next_commands(1)
    assert restart.action is Action.RESTART
    assert (restart.server, restart.group, restart.resource) == ("server1", "failover1", "app1")
    assert restart.id == restart.id and restart.fault_id == fault.id
    await probe.no_more_commands()


async def test_failover_outside_the_server_group(
    start_service: RunningService, probe: BusProbe
) -> None:
    await start_service(
        cluster("""
  mrw3:
    category: HA/SS
    recovery: {action: failover, target: failover1, outside_server_group: true}
""")
    )
    await probe.publish(make_fault("server1", "HA/SS", "/dev/sdb"))
    (stop,) = await probe.next_commands(1)
    await probe.answer(stop)
    (start,) = await probe.next_commands(1)
    assert (stop.server, start.server) == ("server1", "server3")  # server2 shares site-a
    assert start.to_server == "server3" and start.step is CommandStep.START


async def test_final_action_as_the_action(start_service: RunningService, probe: BusProbe) -> None:
    await start_service(
        cluster("""
  mrw4:
    category: HA/AM
    recovery: {action: final_action, target: failover2, final_action: reboot}
""")
    )
    await probe.publish(make_fault("server2", "HA/AM", "app-db"))
    (command,) = await probe.next_commands(1)
    assert (command.action, command.server, command.final_action) == (
        Action.FINAL_ACTION,
        "server2",
        FinalAction.REBOOT,
    )
    assert command.routing_key == "server2.final_action"


async def test_target_not_active_means_no_recovery(
    start_service: RunningService, probe: BusProbe
) -> None:
    service = await start_service(NIC_FAILOVER)
    await probe.publish(make_fault("server2", "NIC", "eth1"))  # failover1 runs on server1
    event = await probe.wait_event("MRW-301")
    assert event.server == "server2" and "not active" in event.text
    await probe.no_more_commands()
    assert shown_status(service.cluster, "mrw1", "server2") == "Error"


async def test_second_fault_while_in_error_starts_nothing(
    start_service: RunningService, probe: BusProbe
) -> None:
    service = await start_service(NIC_FAILOVER)
    await probe.publish(make_fault("server1", "NIC", "eth0"))
    await probe.next_commands(1)
    await probe.publish(make_fault("server1", "NIC", "eth0"))
    await probe.wait_event("MRW-103")
    await probe.no_more_commands()
    assert service.cluster.state_of("mrw1", "server1").faults == 2


async def test_counts_used_up_lead_to_the_final_action(
    start_service: RunningService, probe: BusProbe
) -> None:
    await start_service(
        cluster("""
  mrw5:
    category: FC
    recovery: {action: restart, target: failover1, max_restarts: 0, final_action: stop_group}
""")
    )
    await probe.publish(make_fault("server1", "FC", "hba0"))
    (command,) = await probe.next_commands(1)
    assert (command.action, command.final_action, command.group) == (
        Action.FINAL_ACTION,
        FinalAction.STOP_GROUP,
        "failover1",
    )
    await probe.no_more_commands()


async def test_same_fault_id_twice_yields_one_set_of_commands(
    start_service: RunningService, probe: BusProbe
) -> None:
    await start_service(NIC_FAILOVER)
    fault = make_fault("server1", "NIC", "eth0")
    await probe.publish(fault)
    await probe.publish(fault)
    (stop,) = await probe.next_commands(1)
    await probe.no_more_commands(1.0)
    await probe.answer(stop)
    await probe.answer(stop)  # a result sent twice moves the failover on once
    await probe.next_commands(1)
    await probe.no_more_commands(1.0)


BAD_INPUTS = [
    (b"this is not json", "server1.nic", "not JSON"),
    (b"\xff\xfe\x00garbage", "server1.nic", "not valid UTF-8"),
    (b'{"id": "x1", "server": "server1"}', "server1.nic", "breaks the fault schema"),
    (
        b'{"id": "x2", "server": "server1", "category": "USB", "device": "eth0",'
        b' "occurred_at": "2026-01-01T00:00:00Z"}',
        "server1.usb",
        "category",
    ),
    (b"{" + b" " * 70_000 + b"}", "server1.nic", "at most 65536"),
    (b"[1, 2, 3]", "server1.nic", "JSON object"),
    (
        b'{"id": "x3", "server": "server1", "category": "NIC", "device": "eth0",'
        b' "occurred_at": "2026-01-01T00:00:00Z"}',
        "server2.nic",
        "routing key",
    ),
]


async def test_malformed_bodies_are_dead_lettered_while_good_faults_flow(
    start_service: RunningService, probe: BusProbe
) -> None:
    service = await start_service(NIC_FAILOVER)
    good = make_fault("server1", "NIC", "eth0")
    for index, (body, routing_key, _) in enumerate(BAD_INPUTS):
        await probe.publish_raw(body, routing_key, message_id=f"bad-{index}")
        if index == 3:
            await probe.publish(good)

    (stop,) = await probe.next_commands(1)
    assert stop.fault_id == good.id
    dead = await probe.dead_letters(len(BAD_INPUTS))
    by_id = {message.message_id: message for message in dead}
    for index, (body, routing_key, reason) in enumerate(BAD_INPUTS):
        message = by_id[f"bad-{index}"]
        assert message.body == body
        assert reason in str(message.headers[ERROR_HEADER])
        assert message.headers["x-mrwbus-routing-key"] == routing_key
    assert service.counters.dead_lettered == len(BAD_INPUTS)
    assert service.health.consuming
